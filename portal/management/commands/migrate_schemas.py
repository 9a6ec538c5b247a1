"""`migrate_schemas`, made fast when nothing changed and resumable when something did.

django-tenants' command visits every school schema on every run. With thousands of schools a
no-op run should not: each school records the digest of the migrations applied to it
(School.migration_state), and a full run only visits the template schema and the schools whose
digest differs from the migrations on disk. A school's digest is written as soon as its own
migration finishes, so an interrupted run resumes where it stopped. `--all-schemas` visits every
school regardless (after restoring a schema from a backup, say).
"""

from __future__ import annotations

from django.conf import settings
from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand
from django_tenants.migration_executors import get_executor
from django_tenants.signals import schema_migrated
from django_tenants.utils import get_public_schema_name

from portal.db import connection
from portal.models import School
from portal.provisioning import migration_state_current, template_schema_ensure


def _record_state(sender, schema_name: str, **kwargs) -> None:
    state = getattr(_record_state, "state", None)
    if state is None or schema_name in (get_public_schema_name(), settings.TENANT_BASE_SCHEMA):
        return
    connection.set_schema_to_public()
    School.objects.filter(schema_name=schema_name).update(migration_state=state)


class Command(MigrateSchemasCommand):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--all-schemas",
            action="store_true",
            help="Visit every school schema, even those already recorded as current.",
        )

    def handle(self, *args, **options):
        if options.get("schema_name") and not (
            options.get("app_label")
            or options.get("fake")
            or options.get("plan")
            or options.get("check_unapplied")
        ):
            # One school migrated to the end: record it, so the next full run need not visit it.
            _record_state.state = migration_state_current()
            schema_migrated.connect(_record_state, dispatch_uid="portal-migration-state")
            try:
                return super().handle(*args, **options)
            finally:
                schema_migrated.disconnect(dispatch_uid="portal-migration-state")
        targeted = options.get("schema_name") or options.get("app_label") or options.get("migration_name")
        if targeted or options.get("fake") or options.get("plan") or options.get("check_unapplied"):
            return super().handle(*args, **options)

        # The public schema first, exactly as django-tenants does it.
        if not options.get("tenant"):
            public_options = dict(options, shared=True, tenant=False)
            super().handle(*args, **public_options)
        if options.get("shared"):
            return None

        state = template_schema_ensure(verbosity=options.get("verbosity", 1))
        connection.set_schema_to_public()
        schools = School.objects.order_by("pk")
        if not options.get("all_schemas"):
            schools = schools.exclude(migration_state=state)
        pending = list(schools.values_list("schema_name", flat=True))
        total = School.objects.count()
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(
                f"{len(pending)} of {total} school schemas to migrate "
                f"(template {settings.TENANT_BASE_SCHEMA} is current)."
            )
        if not pending:
            return None
        # SyncCommon.handle fills in self.args/self.options/self.executor for the executor.
        super(MigrateSchemasCommand, self).handle(*args, **dict(options, tenant=True, shared=False))
        if self.executor is None and len(pending) > 1:
            self.executor = "multiprocessing"
        _record_state.state = state
        schema_migrated.connect(_record_state, dispatch_uid="portal-migration-state")
        try:
            executor = get_executor(codename=self.executor)(self.args, self.options)
            executor.run_migrations(tenants=pending)
        finally:
            schema_migrated.disconnect(dispatch_uid="portal-migration-state")
        return None
