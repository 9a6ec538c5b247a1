"""`manage.py provision_schools schools.csv`: create the schools of a CSV file by cloning the template.

Columns: ma_truong, ten_truong, cap_hoc (tieu_hoc; thcs; thpt; gdtx, joined by ';'), ma_don_vi
(empty: the school reports to the department directly), dia_chi. A file with any bad row is
refused with every problem listed, and nothing is created. Running the same file again changes
nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from portal.provisioning import SchoolCsvError, schools_provision_from_csv


class Command(BaseCommand):
    help = "Create schools from a CSV file, each by cloning the template schema."

    def add_arguments(self, parser):
        parser.add_argument("csv_file", type=Path)

    def handle(self, *args, csv_file: Path, **options):
        try:
            data = csv_file.read_bytes()
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": csv_file, "error": exc}
            ) from exc

        verbosity = options["verbosity"]

        def progress(index, total, school, outcome):
            if verbosity >= 2 or (verbosity >= 1 and (index % 100 == 0 or index == total)):
                self.stdout.write(f"[{index}/{total}] {school.code}: {outcome}")

        try:
            report = schools_provision_from_csv(
                actor=None, data=data, filename=csv_file.name, progress=progress
            )
        except SchoolCsvError as exc:
            lines = [_("%(file)s was refused; no school was created:") % {"file": csv_file.name}]
            lines += [f"  {problem}" for problem in exc.problems]
            raise CommandError("\n".join(lines)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                _("%(created)d created, %(updated)d updated, %(unchanged)d unchanged.")
                % {
                    "created": len(report.created),
                    "updated": len(report.updated),
                    "unchanged": len(report.unchanged),
                }
            )
        )
