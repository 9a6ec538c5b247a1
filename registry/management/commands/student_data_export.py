"""A person's data exported on request, across schools, by the Department (registry.privacy).

    manage.py student_data_export --personal-id 010212345678 --reason "Công văn số 12/2026" \
        --actor admin_so -o du-lieu.zip

Finds every school's student with the personal ID number (a student who moved schools has a row
in each), writes one ZIP of all of it, and logs the export (registry.PersonalDataExport) as made
by --actor, who must be a department administrator holding a data grant.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.models import User
from registry.models_privacy import PersonalDataExportChannel
from registry.privacy import student_data_export
from registry.privacy_gather import export_subjects_by_personal_id


class Command(BaseCommand):
    help = (
        "Export a person's data (Personal Data Protection Law 2025) from every school where their "
        "personal ID number is found, as one ZIP; the export is logged as made by --actor."
    )

    def add_arguments(self, parser):
        parser.add_argument("--personal-id", required=True, help="The 12-digit personal ID number.")
        parser.add_argument("--reason", required=True, help="The written request's reference, or the reason.")
        parser.add_argument("--actor", required=True, help="The username of the department administrator.")
        parser.add_argument(
            "-o", "--out", required=True, help="The ZIP file to write (replaced if it exists)."
        )

    def handle(self, *args, **options):
        actor = User.objects.filter(username=options["actor"], is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user {options['actor']!r}.")
        try:
            subjects = export_subjects_by_personal_id(options["personal_id"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        out = Path(options["out"])
        part = out.with_name(out.name + ".part")
        try:
            with open(part, "wb") as file:
                export = student_data_export(
                    actor=actor,
                    subjects=subjects,
                    reason=options["reason"],
                    channel=PersonalDataExportChannel.COMMAND,
                    out=file,
                )
            os.replace(part, out)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        except PermissionDenied as error:
            raise CommandError(str(error) or "Permission denied.") from error
        except OSError as error:
            raise CommandError(f"Cannot write {out}: {error}") from error
        finally:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
        self.stdout.write(
            f"{out}: {len(export.students)} school record(s) ({', '.join(export.students)}), "
            f"{export.files} files, {export.size} bytes, SHA-256 {export.sha256}, "
            f"reference {export.reference}"
        )
