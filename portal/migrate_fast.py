"""A schema migration across thousands of schools: run once, replayed in every other school.

django-tenants runs Django's `migrate` once per school schema: it loads the migration graph,
renders the model states and introspects the schema for every school, about 0.3 s of work per
school however small the change (319 s for 1,000 schools to add one column and one index, where
the SQL itself takes 14 s). Every school schema is a clone of the template schema
(portal.clone), so a migration issues the same SQL in each of them.

So, when every pending operation only changes the structure (no RunPython, nothing that names
a schema), the first schema (the template, or the first school of a group) is migrated the
normal way while the SQL Django sends for each migration is captured, and that SQL is replayed
in every other school that stands where the captured one stood (the same rows in its
django_migrations table). Each school is one transaction over one connection: search_path set
to the school, the captured statements, the new django_migrations rows and the school's
migration_state in public. A school is either migrated entirely or not at all, so a run that
is stopped resumes at the next school.

Anything else goes to django-tenants' per-school executor: a plan with RunPython, an operation
this module does not know, a non-atomic migration, a default computed in Python (the same value
would be written in every school), captured SQL naming the captured schema, a school whose
applied migrations differ from every captured one, or a replay that fails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError, router, transaction
from django.db.migrations import operations as ops
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import NOT_PROVIDED
from django_tenants.signals import schema_migrated
from django_tenants.utils import get_tenant_base_migrate_command_class, schema_exists

from .db import connection
from .models import School

MigrationKey = tuple[str, str]
Applied = frozenset[MigrationKey]
Statement = tuple[str, Any, bool]  # sql, params, many

# Operations whose database effect is SQL computed from the model states alone (the same in
# every clone of the template). Matched by exact type: a subclass may do anything.
SCHEMA_ONLY_OPERATIONS: frozenset[type] = frozenset(
    {
        ops.CreateModel,
        ops.DeleteModel,
        ops.RenameModel,
        ops.AlterModelTable,
        ops.AlterModelTableComment,
        ops.AlterUniqueTogether,
        ops.AlterIndexTogether,
        ops.AlterOrderWithRespectTo,
        ops.AlterModelOptions,
        ops.AlterModelManagers,
        ops.AddIndex,
        ops.RemoveIndex,
        ops.RenameIndex,
        ops.AddConstraint,
        ops.RemoveConstraint,
        ops.AlterConstraint,
        ops.AddField,
        ops.RemoveField,
        ops.AlterField,
        ops.RenameField,
    }
)


def _schema_reference() -> re.Pattern[str]:
    """What a RunSQL that names a schema contains: the search_path, the public schema's name
    before a dot, the template's name, or a school schema's prefix (School.schema_name_for)."""
    public = re.escape(settings.PUBLIC_SCHEMA_NAME)
    template = re.escape(settings.TENANT_BASE_SCHEMA)
    prefix = re.escape(School.schema_name_for("x")[:-1])
    return re.compile(
        rf'(\bsearch_path\b|\b{public}\s*\.|"{public}"\s*\.|\b{template}\b|\b{prefix}\w+)', re.I
    )


# Read-only catalogue queries Django's introspection makes while migrating: nothing to replay.
_CATALOGUE_READ = re.compile(r"\b(pg_catalog\s*\.|information_schema\s*\.|(FROM|JOIN)\s+pg_\w+)", re.I)
_SIDE_EFFECTS = re.compile(r"\b(setval|nextval|set_config|pg_advisory\w*|lo_\w+)\s*\(", re.I)
_TRANSACTION_CONTROL = re.compile(r"^\s*(SAVEPOINT|RELEASE\s+SAVEPOINT|ROLLBACK\s+TO\s+SAVEPOINT)\b", re.I)
_RECORDER = re.compile(r'\bdjango_migrations\b|"django_migrations"', re.I)
_SET_SEARCH_PATH = re.compile(r"^\s*SET\s+(LOCAL\s+|SESSION\s+)?search_path\b", re.I)
_READ = re.compile(r"^\s*(SELECT|SHOW)\b", re.I)


def _use_schema(schema: str, *, include_public: bool = True) -> None:
    """django-tenants' set_schema (portal.db types the connection's set_tenant only)."""
    cast(Any, connection).set_schema(schema, include_public=include_public)


def applied_digest(applied: Iterable[MigrationKey]) -> str:
    """The digest School.migration_state records (portal.provisioning.migration_state_of)."""
    names = sorted(f"{app}.{name}" for app, name in applied)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


# --- What can be replayed --------------------------------------------------------------------


def _operation_refusal(operation, label: str) -> str | None:
    kind = type(operation)
    if kind is ops.SeparateDatabaseAndState:
        for inner in operation.database_operations:
            if reason := _operation_refusal(inner, label):
                return reason
        return None
    if kind is ops.RunSQL:
        statements = operation.sql if isinstance(operation.sql, list | tuple) else [operation.sql]
        for statement in statements:
            text = statement[0] if isinstance(statement, list | tuple) else statement
            if _schema_reference().search(str(text)):
                return f"RunSQL naming a schema in {label}"
        return None
    if kind not in SCHEMA_ONLY_OPERATIONS:
        return f"{kind.__name__} in {label}"
    field = getattr(operation, "field", None)
    if field is not None and field.default is not NOT_PROVIDED and callable(field.default):
        # Evaluated once by Django: the captured value would be written in every school.
        return f"a default computed in Python ({operation.describe()}) in {label}"
    return None


def plan_refusal(plan: Sequence[tuple[Any, bool]]) -> str | None:
    """Why this plan cannot be replayed from a captured school, or None when it can.

    Migrations of apps that are not migrated in school schemas (the router refuses them there:
    django-tenants' TenantSyncRouter) only add a django_migrations row, whatever they contain.
    """
    for migration, backwards in plan:
        label = f"{migration.app_label}.{migration.name}"
        if backwards:
            return f"{label} is unapplied"
        if router.allow_migrate(connection.alias, migration.app_label) is False:
            continue
        if not migration.atomic:
            return f"{label} is not atomic"
        for operation in migration.operations:
            if reason := _operation_refusal(operation, label):
                return reason
    return None


def schema_plan(schema: str) -> tuple[list[tuple[Any, bool]], str | None]:
    """The migrations `migrate` would run in `schema`, and why they cannot be replayed (or None).

    Judged with the connection on `schema`, as the router answers per schema; left on public.
    """
    _use_schema(schema)
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        return plan, plan_refusal(plan)
    finally:
        connection.set_schema_to_public()


# --- Capturing -------------------------------------------------------------------------------


@dataclass
class Script:
    """What migrating `source` from `before` did: its SQL and the django_migrations rows added."""

    source: str
    before: Applied
    rows: list[MigrationKey]
    statements: list[Statement]
    batch: str | None = None  # the statements and rows as one text (_batch)

    @property
    def after(self) -> Applied:
        return self.before | frozenset(self.rows)

    @property
    def digest(self) -> str:
        """The migration_state of a school once the script is replayed in it."""
        return applied_digest(self.after)


@dataclass
class _Capture:
    """An execute wrapper keeping the SQL sent while a migration is being applied."""

    statements: list[Statement] = field(default_factory=list)
    refusal: str | None = None
    _current: str | None = None

    def begin(self, migration, fake: bool) -> None:
        self._current = f"{migration.app_label}.{migration.name}"
        if fake:
            self.refusal = self.refusal or f"{self._current} was faked"

    def end(self) -> None:
        self._current = None

    def refuse(self, reason: str) -> None:
        self.refusal = self.refusal or reason

    def __call__(self, execute, sql, params, many, context):
        if many and params is not None:
            params = list(params)
        self._keep(sql, params, many)
        return execute(sql, params, many, context)

    def _keep(self, sql: str, params, many: bool) -> None:
        text = str(sql)
        if _TRANSACTION_CONTROL.match(text) or _SET_SEARCH_PATH.match(text) or _RECORDER.search(text):
            return
        if _READ.match(text) and _CATALOGUE_READ.search(text) and not _SIDE_EFFECTS.search(text):
            return
        if self._current is None:
            # Outside a migration Django only reads (the recorder, the consistency check); a
            # write there (a post_migrate handler, say) is not part of any captured script.
            if not _READ.match(text) or _SIDE_EFFECTS.search(text):
                self.refuse(f"a statement outside any migration: {text[:80]}")
            return
        self.statements.append((text, params, many))


def _capturing_command_class():
    base = get_tenant_base_migrate_command_class()

    class CapturingMigrate(base):  # type: ignore[misc, valid-type]
        capture: _Capture

        def migration_progress_callback(self, action, migration=None, fake=False):
            if action == "apply_start":
                self.capture.begin(migration, fake)
            elif action == "apply_success":
                self.capture.end()
            elif action.startswith("unapply"):
                self.capture.refuse("a migration was unapplied")
            super().migration_progress_callback(action, migration, fake)

    return CapturingMigrate


def applied_in(schema: str) -> list[MigrationKey]:
    """The schema's django_migrations rows, in the order they were applied."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations ORDER BY id')  # noqa: S608 - a schema name we hold
        return [(app, name) for app, name in cursor.fetchall()]


def schema_migrate_capturing(schema: str, *, args: Sequence[Any], options: dict[str, Any]) -> Script | str:
    """Migrate `schema` with Django's migrate, as django-tenants does; return what it did.

    Returns the Script to replay elsewhere, or the reason it cannot be replayed (the schema is
    migrated either way). The connection is left on the public schema.
    """
    connection.set_schema_to_public()
    before = applied_in(schema)
    # django-tenants' run_migrations: the schema's own django_migrations table, then migrate.
    _use_schema(schema, include_public=False)
    MigrationRecorder(connection).ensure_schema()
    _use_schema(schema)
    command = _capturing_command_class()(stdout=options.get("stdout"), stderr=options.get("stderr"))
    capture = command.capture = _Capture()
    try:
        with connection.execute_wrapper(capture):
            command.execute(*args, **options)
    finally:
        connection.set_schema_to_public()
    after = applied_in(schema)
    if capture.refusal:
        return capture.refusal
    if not set(before) <= set(after):
        return f"rows left {schema}'s django_migrations"
    pattern = re.compile(rf"\b{re.escape(schema)}\b")
    for sql, params, _many in capture.statements:
        if pattern.search(sql) or pattern.search(repr(params)):
            return f"the SQL names the schema {schema}: {sql[:80]}"
    known = set(before)
    return Script(
        source=schema,
        before=frozenset(before),
        rows=[key for key in after if key not in known],
        statements=capture.statements,
    )


# --- Replaying -------------------------------------------------------------------------------


@dataclass
class MigrateReport:
    """What a run did with each school schema it was given."""

    replayed: list[str] = field(default_factory=list)  # the captured SQL replayed
    captured: list[str] = field(default_factory=list)  # migrated by Django while capturing
    per_school: list[str] = field(default_factory=list)  # left to django-tenants' executor
    reasons: dict[str, str] = field(default_factory=dict)  # per_school schema: why
    sources: dict[str, str] = field(default_factory=dict)  # replayed schema: captured from


_UNKNOWN = object()


def _batch(script: Script) -> str | None:
    """The script as one SQL text (parameters inlined), sent in one round trip; None if it has
    an executemany. Made once per script: the text is the same for every school."""
    if script.batch is None and all(not many for _sql, _params, many in script.statements):
        parts = [
            sql if params is None else connection.ops.compose_sql(sql, params)
            for sql, params, _many in script.statements
        ]
        if script.rows:
            values = ", ".join(
                connection.ops.compose_sql("(%s, %s, now())", [app, name]) for app, name in script.rows
            )
            parts.append(f"INSERT INTO django_migrations (app, name, applied) VALUES {values}")  # noqa: S608
        script.batch = ";\n".join(parts)
    return script.batch


def _replay(schema: str, scripts: dict[Applied, Script | str]) -> Script | str | Applied:
    """Replay the script matching `schema`'s applied migrations, in one transaction.

    Returns the Script replayed, the reason none can be (known for that state), or the applied
    set when no script is known for it yet (nothing was changed then).
    """
    _use_schema(schema)
    with transaction.atomic(), connection.cursor() as cursor:
        # In one statement: where the search_path points, the school's row locked (a second
        # run at the same time waits here, then finds the migrations applied and leaves the
        # school alone), and the migrations the school has.
        cursor.execute(
            f"""SELECT current_schema(), s.id,
                       (SELECT coalesce(json_agg(json_build_array(m.app, m.name)), '[]'::json)
                          FROM "{schema}".django_migrations m)
                  FROM {School._meta.db_table} s WHERE s.schema_name = %s
                   FOR NO KEY UPDATE OF s""",  # noqa: S608 - a schema name we hold
            [schema],
        )
        row = cursor.fetchone()
        if row is None:
            raise DatabaseError(f"no school has the schema {schema!r}")
        current, school_id, rows = row
        if current != schema:  # the search_path did not take: never write elsewhere
            raise DatabaseError(f"search_path is on {current!r}, not {schema!r}")
        applied: Applied = frozenset((app, name) for app, name in rows)
        script = scripts.get(applied, _UNKNOWN)
        if not isinstance(script, Script):
            return applied if script is _UNKNOWN else script  # type: ignore[return-value]
        record = connection.ops.compose_sql(
            f"UPDATE {School._meta.db_table} SET migration_state = %s WHERE id = %s",  # noqa: S608
            [script.digest, school_id],
        )
        batch = _batch(script)
        if batch is not None:
            cursor.execute(f"{batch};\n{record}" if batch else record)
        else:
            for sql, params, many in script.statements:
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
            if script.rows:
                cursor.executemany(
                    "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, now())", script.rows
                )
            cursor.execute(record)
    return script


def school_schemas_migrate(
    schemas: Sequence[str],
    *,
    args: Sequence[Any],
    options: dict[str, Any],
    scripts: dict[Applied, Script | str] | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> MigrateReport:
    """Bring each school schema to the migrations on disk, replaying captured SQL where it can.

    `scripts` are what is already known (the template's capture, keyed by where it started). A
    school whose applied migrations match no known script is migrated by Django while capturing
    when its plan can be replayed, and its capture serves the schools that follow. The schools
    that cannot be replayed are returned in `per_school`, for django-tenants' executor; the
    others are done, their migration_state recorded, and django-tenants' `schema_migrated`
    signal sent for each after its commit.
    """
    scripts = dict(scripts or {})
    report = MigrateReport()
    step = max(1, len(schemas) // 10)
    for index, schema in enumerate(schemas, start=1):
        try:
            outcome = _replay(schema, scripts)
        except DatabaseError as exc:
            connection.set_schema_to_public()
            report.per_school.append(schema)
            report.reasons[schema] = f"the replay failed: {str(exc).strip().splitlines()[0]}"
            continue
        connection.set_schema_to_public()
        if isinstance(outcome, Script):
            report.replayed.append(schema)
            report.sources[schema] = outcome.source
        elif isinstance(outcome, str):
            report.per_school.append(schema)
            report.reasons[schema] = outcome
            continue
        else:
            applied: Applied = outcome
            _plan, refusal = schema_plan(schema)
            if refusal is not None:
                scripts[applied] = refusal
                report.per_school.append(schema)
                report.reasons[schema] = refusal
                continue
            captured = schema_migrate_capturing(schema, args=args, options=options)
            scripts[applied] = captured
            report.captured.append(schema)
            School.objects.filter(schema_name=schema).update(
                migration_state=applied_digest(applied_in(schema))
            )
            if isinstance(captured, str):
                say(f"{schema}: migrated by Django; its SQL is not replayed ({captured})")
            else:
                say(
                    f"{schema}: migrated by Django, {len(captured.statements)} statements captured "
                    f"for the schools where it stood"
                )
        schema_migrated.send(school_schemas_migrate, schema_name=schema)
        if index % step == 0 or index == len(schemas):
            say(f"{index}/{len(schemas)} schools visited ({len(report.replayed)} replayed)")
    return report


def template_migrate(*, args: Sequence[Any], options: dict[str, Any]) -> Script | str | None:
    """Migrate the template schema the normal way, capturing its SQL when it can be replayed.

    None when the template is missing or already current (portal.provisioning's
    template_schema_ensure makes or checks it next); the reason when its plan cannot be
    replayed (then it is left to template_schema_ensure, which migrates it).
    """
    template = settings.TENANT_BASE_SCHEMA
    connection.set_schema_to_public()
    if not schema_exists(template):
        return None
    plan, refusal = schema_plan(template)
    if not plan:
        return None
    if refusal is not None:
        return refusal
    return schema_migrate_capturing(template, args=args, options=options)
