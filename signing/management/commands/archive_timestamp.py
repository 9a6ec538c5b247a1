"""manage.py archive_timestamp: renew issued records with archive timestamps (XAdES-LTA).

    manage.py archive_timestamp [--school CODE ...] [--year 2025-2026] [--due-within-days 400]
                                [--all] [--dry-run]

Run it on a schedule (docs/operations.md "Lưu giữ chữ ký dài hạn"): a record is renewed when the
certificate behind its newest timestamps ends within --due-within-days; --all renews every record.
Needs HOCBA_TSA_URL. Exit status 1 if a record could not be renewed.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from portal.models import School
from signing.services.renewals import records_renew


class Command(BaseCommand):
    help = "Renew issued year records with archive timestamps before their proof of time lapses."

    def add_arguments(self, parser):
        parser.add_argument("--school", action="append", default=[], help="school code (repeatable)")
        parser.add_argument("--year", default=None, help="only this school year, e.g. 2025-2026")
        parser.add_argument("--due-within-days", type=int, default=400)
        parser.add_argument("--all", action="store_true", help="renew every record, due or not")
        parser.add_argument("--dry-run", action="store_true", help="count what is due, change nothing")

    def handle(self, *args, **options):
        schools = School.objects.exclude(schema_name="public").order_by("code")
        if options["school"]:
            schools = schools.filter(code__in=options["school"])
            missing = set(options["school"]) - set(schools.values_list("code", flat=True))
            if missing:
                raise CommandError(f"Unknown school code(s): {', '.join(sorted(missing))}")
        totals = {"renewed": 0, "not_due": 0, "without_timestamp": 0, "failed": 0}
        earliest = None
        for school in schools:
            try:
                outcome = records_renew(
                    school,
                    due_within=dt.timedelta(days=options["due_within_days"]),
                    force=options["all"],
                    dry_run=options["dry_run"],
                    school_year=options["year"],
                )
            except ValueError as error:
                raise CommandError(str(error)) from error
            for label, why in outcome.failed.items():
                self.stderr.write(f"{school.code} {label}: {why}")
            if outcome.renewed or outcome.failed:
                verb = "due" if options["dry_run"] else "renewed"
                self.stdout.write(f"{school.code}: {outcome.renewed} {verb}, {len(outcome.failed)} failed")
            totals["renewed"] += outcome.renewed
            totals["not_due"] += outcome.not_due
            totals["without_timestamp"] += outcome.without_timestamp
            totals["failed"] += len(outcome.failed)
            if outcome.earliest_left is not None:
                earliest = outcome.earliest_left if earliest is None else min(earliest, outcome.earliest_left)
        next_due = f"; the earliest proof left ends {earliest.date().isoformat()}" if earliest else ""
        verb = "Due" if options["dry_run"] else "Renewed"
        self.stdout.write(
            f"{verb}: {totals['renewed']}; not due: {totals['not_due']}; "
            f"without timestamp (baseline B, not renewable): {totals['without_timestamp']}; "
            f"failed: {totals['failed']}{next_due}"
        )
        if totals["failed"]:
            raise SystemExit(1)
