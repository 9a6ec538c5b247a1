"""`manage.py progress_reconcile [--school CODE ...]`: recount the schools' progress rows.

Each school's services keep its progress row (portal.SchoolProgress) current in their own
transactions; this rebuilds every row from the schools' schemas (and the public outbox), corrects
what drifted, audits each correction (AuditAction.PROGRESS_RECONCILED) and prints it. Nightly by
Celery beat too (portal.tasks.progress_reconcile). Exit status 0 either way: drift is reported, not
an error.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from portal.models import School
from portal.progress.services import progress_reconcile


class Command(BaseCommand):
    help = "Recount the schools' progress rows from their data; report and fix any drift."

    def add_arguments(self, parser):
        parser.add_argument("--school", action="append", default=[], help="A school code (repeatable).")

    def handle(self, *args, school: list[str], **options):
        schools = None
        if school:
            schools = list(School.objects.filter(code__in=school).order_by("pk"))
            missing = sorted(set(school) - {s.code for s in schools})
            if missing:
                raise CommandError(_("Unknown school codes: %(codes)s") % {"codes": ", ".join(missing)})
        drifts = progress_reconcile(schools=schools)
        for drift in drifts:
            changes = "; ".join(
                f"{name} {stored} → {counted}" for name, (stored, counted) in sorted(drift.changes.items())
            )
            self.stdout.write(f"{drift.school.code} {drift.school_year}: {changes}")
        self.stdout.write(
            _("Progress rows corrected: %(count)d.") % {"count": len(drifts)}
            if drifts
            else _("No drift: every progress row matches its school.")
        )
