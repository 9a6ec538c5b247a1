from django.core.management.base import BaseCommand

from portal.models import School
from portal.services import connection_tenant_reset, connection_tenant_set
from registry.services import outbox_backfill


class Command(BaseCommand):
    help = (
        "Queue for the Ministry every issued version that has no message yet (records issued before "
        "forwarding was switched on). Idempotent; one school (--school CODE) or all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--school", help="Only this school's code.")

    def handle(self, *args, **options):
        schools = School.objects.filter(active=True).order_by("code")
        if options["school"]:
            schools = schools.filter(code=options["school"])
        total = 0
        for school in schools:
            connection_tenant_set(school)
            try:
                written = outbox_backfill(school=school)
            finally:
                connection_tenant_reset()
            if written:
                self.stdout.write(f"{school.code}: {written} queued")
            total += written
        self.stdout.write(f"{total} issued versions queued for the Ministry.")
