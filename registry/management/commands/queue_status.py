"""`manage.py queue_status [--json] [--warn N --crit N] [--warn-age S --crit-age S]`: the Celery
queues' lengths and the background work the database owes, for a person or a monitoring system.

Exit status as a Nagios plugin's: 0 OK, 1 WARNING, 2 CRITICAL (3 UNKNOWN when Redis or
PostgreSQL cannot be read). The first line is the verdict and its reasons; then one line per
figure (docs/operations.md, "Monitoring").
"""

from __future__ import annotations

import json
import sys

import redis
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils.translation import gettext as _

from registry.monitoring import STATUS_NAMES, Thresholds, queue_status

UNKNOWN = 3


class Command(BaseCommand):
    help = "The Celery queues' lengths and the work owed (PDFs, the Ministry's outbox, signing batches)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--warn", type=int, default=Thresholds.warn, help="Messages or records: warning.")
        parser.add_argument(
            "--crit", type=int, default=Thresholds.crit, help="Messages or records: critical."
        )
        parser.add_argument(
            "--warn-age", type=int, default=Thresholds.warn_age, help="Seconds waited: warning."
        )
        parser.add_argument(
            "--crit-age", type=int, default=Thresholds.crit_age, help="Seconds waited: critical."
        )

    def handle(self, *args, **options):
        for name in ("warn", "crit", "warn_age", "crit_age"):
            if options[name] < 1:
                raise CommandError(
                    _("--%(name)s must be a positive number.") % {"name": name.replace("_", "-")}
                )
        if options["warn"] > options["crit"] or options["warn_age"] > options["crit_age"]:
            raise CommandError(_("A warning threshold must not be above its critical threshold."))
        thresholds = Thresholds(
            warn=options["warn"],
            crit=options["crit"],
            warn_age=options["warn_age"],
            crit_age=options["crit_age"],
        )
        try:
            result = queue_status(thresholds=thresholds)
        except (redis.RedisError, DatabaseError) as exc:
            reason = _("The queues cannot be read")
            self.stdout.write(f"UNKNOWN - {reason}: {exc}")
            sys.exit(UNKNOWN)
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            problems = "; ".join(result.problems) or _("nothing waits")
            self.stdout.write(f"{STATUS_NAMES[result.status]} - {problems}")
            for name, length in result.queues.items():
                self.stdout.write(f"queue {name}: {length}")
            self.stdout.write(f"unacked: {result.unacked}")
            for group in ("pdf", "outbox", "signing"):
                figures = getattr(result, group)
                self.stdout.write(f"{group}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
        if result.status:
            sys.exit(result.status)
