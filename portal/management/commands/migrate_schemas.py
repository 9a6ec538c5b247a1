"""`migrate_schemas`, made fast when nothing changed and resumable when something did.

django-tenants' command visits every school schema on every run. With thousands of schools a
no-op run should not: each school records the digest of the migrations applied to it
(School.migration_state), and a full run only visits the template schema and the schools whose
digest differs from the migrations on disk. A school's digest is written as soon as its own
migration finishes, so an interrupted run resumes where it stopped. `--all-schemas` visits every
school regardless (after restoring a schema from a backup, say).

A migration that only changes the structure is run by Django once, in the template schema,
while its SQL is captured; that SQL is then replayed in each school over one connection, one
transaction per school (portal.migrate_fast). The schools it cannot serve (RunPython, a
failure, a school that stands elsewhere) are migrated one by one by django-tenants' executor,
as before; `--per-school` sends every school there.
"""

from __future__ import annotations

from django.conf import settings
from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand
from django_tenants.migration_executors import get_executor
from django_tenants.signals import schema_migrated
from django_tenants.utils import get_public_schema_name

from portal.db import connection
from portal.migrate_fast import Script, school_schemas_migrate, template_migrate
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
        parser.add_argument(
            "--per-school",
            action="store_true",
            help="Migrate each school with Django, one by one, instead of replaying the template's SQL.",
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

        verbosity = options.get("verbosity", 1)
        # SyncCommon.handle fills in self.args/self.options/self.executor, which both the
        # capturing migrate and the executor are given.
        super(MigrateSchemasCommand, self).handle(*args, **dict(options, tenant=True, shared=False))
        scripts = {}
        if not options.get("per_school"):
            captured = template_migrate(args=self.args, options=self.options)
            if isinstance(captured, Script):
                scripts[captured.before] = captured
                if verbosity >= 1:
                    self.stdout.write(
                        f"Template {settings.TENANT_BASE_SCHEMA} migrated; {len(captured.statements)} "
                        "statements captured to replay in each school."
                    )
            elif captured is not None and verbosity >= 1:
                self.stdout.write(f"Schools will be migrated one by one: {captured}.")
        state = template_schema_ensure(verbosity=verbosity)
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
        if not options.get("per_school"):
            report = school_schemas_migrate(
                pending,
                args=self.args,
                options=self.options,
                scripts=scripts,
                say=(lambda line: self.stdout.write(f"  {line}")) if verbosity >= 1 else (lambda line: None),
            )
            if verbosity >= 1:
                self.stdout.write(
                    f"{len(report.replayed)} school schemas migrated by replaying captured SQL, "
                    f"{len(report.captured)} by Django while capturing, "
                    f"{len(report.per_school)} left to migrate one by one."
                )
                for reason in sorted(set(report.reasons.values())):
                    count = sum(1 for r in report.reasons.values() if r == reason)
                    self.stdout.write(f"  {count} one by one: {reason}")
            pending = report.per_school
            if not pending:
                return None
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
