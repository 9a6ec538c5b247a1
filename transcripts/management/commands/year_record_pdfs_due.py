"""`manage.py year_record_pdfs_due [--school CODE ...]`: list the issued records without a PDF as
due (portal.PdfDue), school by school. `--failing`: print the PDFs whose render failed (attempts,
next try, last error) and change nothing.

Issue 15 made the PDFs due a public table written when records are issued, and the sweep reads
only that table. Records issued before the upgrade whose PDF was never made (a render lost with a
worker) have no row: run this once after upgrading (and whenever a school's PDFs are in doubt). It
visits every school's schema (one query each), lists what it finds as due but not queued, and
leaves the queuing to the sweep, HOCBA_PDF_SWEEP_LIMIT a minute, so the broker is never flooded.
Records a signing batch sealed wait for their batch as at issue (HOCBA_PDF_SEAL_GRACE_SECONDS).
Not a data migration: a migration of the public schema cannot rely on the schools' tables, and
this costs one query per school, which an upgrade window should not wait for.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from portal.jobs.selectors import pdf_due_failing
from portal.models import School
from transcripts.records.pdf import year_record_pdfs_due_fill


class Command(BaseCommand):
    help = "List the issued year records without a PDF as due, for the sweep to queue them."

    def add_arguments(self, parser):
        parser.add_argument("--school", action="append", default=[], help="A school code (repeatable).")
        parser.add_argument("--failing", action="store_true", help="Only print the renders that failed.")

    def handle(self, *args, school: list[str], failing: bool = False, **options):
        if failing:
            rows = list(pdf_due_failing())
            for row in rows:
                self.stdout.write(
                    f"{row.school.code} {row.record_pk}: {row.attempts} · {row.due_at.isoformat()}"
                    f" · {row.last_error}"
                )
            self.stdout.write(
                _("PDF renders that failed and are still due: %(count)d.") % {"count": len(rows)}
            )
            return
        schools = School.objects.exclude(schema_name="public").order_by("code")
        if school:
            schools = schools.filter(code__in=school)
            missing = sorted(set(school) - {s.code for s in schools})
            if missing:
                raise CommandError(_("Unknown school codes: %(codes)s") % {"codes": ", ".join(missing)})
        total = 0
        for each in schools.iterator():
            with each:
                listed = year_record_pdfs_due_fill()
            if listed:
                self.stdout.write(f"{each.code}: {listed}")
            total += listed
        self.stdout.write(_("Year records listed as due for their PDF: %(count)d.") % {"count": total})
