"""Write a school year's archive of issued records to a file (registry.archive; docs/operations.md)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.models import Division, School
from registry.archive import (
    archive_write,
    school_year_valid,
    scope_division,
    scope_province,
    scope_schools,
)


class Command(BaseCommand):
    help = (
        "Write the archive of one school year's issued records (XML, PDF, trust roots, CRLs, "
        "timestamps, a manifest with SHA-256s) for some schools, a division or the province, as a "
        "ZIP file. Check it later, offline, with verify_archive."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", required=True, help='The school year, e.g. "2025-2026".')
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--school", action="append", metavar="CODE", help="A school's code (repeatable).")
        scope.add_argument("--division", metavar="CODE", help="Every school of this division.")
        scope.add_argument("--all", action="store_true", help="Every school of the province.")
        parser.add_argument("--out", required=True, help="The ZIP file to write (replaced if it exists).")

    def handle(self, *args, **options):
        year = options["year"]
        if not school_year_valid(year):
            raise CommandError(f"{year!r} is not a school year (e.g. 2025-2026).")
        if options["school"]:
            codes = list(dict.fromkeys(options["school"]))
            schools = list(School.objects.filter(code__in=codes))
            unknown = sorted(set(codes) - {s.code for s in schools})
            if unknown:
                raise CommandError(f"No school with the code(s): {', '.join(unknown)}")
            scope = scope_schools(schools)
        elif options["division"]:
            division = Division.objects.filter(code=options["division"]).first()
            if division is None:
                raise CommandError(f"No division with the code {options['division']!r}.")
            scope = scope_division(division)
        else:
            scope = scope_province()
        out = Path(options["out"])
        part = out.with_name(out.name + ".part")
        try:
            with open(part, "wb") as file:
                summary = archive_write(file, school_year=year, scope=scope)
            os.replace(part, out)
        except OSError as error:
            raise CommandError(f"Cannot write {out}: {error}") from error
        finally:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
        self.stdout.write(
            f"{out}: {summary.records} records, {summary.pdfs} PDFs, {summary.timestamps} timestamps, "
            f"{summary.files} files listed, {out.stat().st_size} bytes"
        )
        for item in summary.missing:
            self.stdout.write(
                f"  not included: {item['record_id']} v{item['version']} ({item['school']}): {item['reason']}"
            )
        self.stdout.write(f"manifest SHA-256 (keep it apart from the archive): {summary.manifest_sha256}")
