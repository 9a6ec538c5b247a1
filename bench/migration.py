"""A real schema migration over N schools: `migrate_schemas` against the same DDL replayed.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/hocba REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/migration.py [--n N | --large] [--per-school-sample K]
    .venv/bin/python bench/provisioning.py --large --migration   # the same, after that bench

The migration is real and new: a copy of the schools app's migrations in a temporary package
(MIGRATION_MODULES) with one more that adds a nullable column and an index to the student
table; the repository's migrations are not touched. Over N schools cloned from the template
(`schools_provision_from_csv`; or the schools bench/provisioning.py made), it measures:

1. the baseline: the migration's SQL (Django's `sqlmigrate` of it) replayed in each school
   schema over one connection, one transaction per school (SET LOCAL search_path, the DDL);
   then undone, not timed;
2. `migrate_schemas` as this revision runs it over the N schools (public, template, schools);
   on a revision with portal.migrate_fast it replays the template's captured SQL, before it
   migrated each school with Django (django-tenants' executor, HOCBA_MIGRATE_PROCESSES);
3. the per-school path on a sample of K schools (`migrate_schemas --per-school`, or the plain
   command before it existed), extrapolated to N; --per-school-sample 0 skips it.

Goal (issue 15): 2 within 3x of 1, and at most 45 s for 1,000 schools. Everything the bench does
to the schools is checked (the column and index in every school, every migration_state current)
and undone at the end. It runs on the code before the fast path too (base commit 7462b61): it
only calls the command and Django's public API.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COLUMN = "bench_note"
INDEX = "schools_stu_bench_note_idx"
NAME = "0999_bench_student_note"
GOAL_RATIO = 3.0
GOAL_SCHOOLS = 1000
GOAL_SECONDS = 45.0
DEFAULT_N = 50
LARGE_N = 1000

MIGRATION = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("schools", "{leaf}")]
    operations = [
        migrations.AddField(
            model_name="student",
            name="bench_note",
            field=models.CharField(max_length=40, null=True, blank=True),
        ),
        migrations.AddIndex(
            model_name="student",
            index=models.Index(fields=["bench_note"], name="schools_stu_bench_note_idx"),
        ),
    ]
"""


def _stderr(message: str) -> None:
    print(f"  ... {message}", file=sys.stderr, flush=True)


@dataclass
class MigrationResult:
    schools: int
    baseline: float = 0.0
    command: float = 0.0
    command_path: str = ""
    sample: int = 0
    sample_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.command / self.baseline if self.baseline else float("inf")

    @property
    def at_goal(self) -> float:
        """The command's time for GOAL_SCHOOLS schools: measured, or scaled linearly from N."""
        return self.command if self.schools == GOAL_SCHOOLS else self.command * GOAL_SCHOOLS / self.schools


@contextlib.contextmanager
def bench_migration():
    """The schools app's migrations plus the bench's one, as MIGRATION_MODULES for the block."""
    from django.db.migrations.loader import MigrationLoader
    from django.test.utils import override_settings

    leaf = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("schools")[0][1]
    directory = Path(tempfile.mkdtemp(prefix="hocba-bench-migration-"))
    package = f"bench_migrations_{uuid.uuid4().hex[:8]}"
    (directory / package).mkdir()
    source = Path(importlib.import_module("schools.migrations").__file__).parent
    for module in source.glob("*.py"):
        shutil.copy(module, directory / package / module.name)
    (directory / package / f"{NAME}.py").write_text(MIGRATION.format(leaf=leaf))
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    try:
        with override_settings(MIGRATION_MODULES={"schools": package}):
            yield
    finally:
        sys.path.remove(str(directory))
        shutil.rmtree(directory, ignore_errors=True)


def migration_sql() -> list[str]:
    """The bench migration's SQL, as `sqlmigrate` prints it (taken on the template schema)."""
    from django.conf import settings
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    connection.set_schema(settings.TENANT_BASE_SCHEMA)
    try:
        executor = MigrationExecutor(connection)
        migration = executor.loader.get_migration("schools", NAME)
        lines = executor.loader.collect_sql([(migration, False)])
    finally:
        connection.set_schema_to_public()
    statements = [line for line in lines if line.strip() and not line.lstrip().startswith("--")]
    statements = [s for s in statements if s.strip().upper() not in ("BEGIN;", "COMMIT;")]
    if not any(COLUMN in s for s in statements) or not any(INDEX in s for s in statements):
        raise SystemExit(f"unexpected SQL for the bench migration: {statements}")
    return statements


def school_schemas() -> list[str]:
    from django.db import connection

    from portal.models import School

    connection.set_schema_to_public()
    return list(School.objects.order_by("pk").values_list("schema_name", flat=True))


def migrated_schemas() -> set[str]:
    """The schemas whose student table has the bench's index (and so its column)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT schemaname FROM pg_indexes WHERE indexname = %s", [INDEX])
        return {schema for (schema,) in cursor.fetchall()}


def undo(schemas: list[str], *, state: str) -> None:
    """Take the bench migration out of these schemas again (column, index, record, state)."""
    from django.db import connection, transaction

    from portal.models import School

    connection.set_schema_to_public()
    for schema in schemas:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE IF EXISTS "{schema}".schools_student DROP COLUMN IF EXISTS {COLUMN}')
            cursor.execute(
                f"DELETE FROM \"{schema}\".django_migrations WHERE app = 'schools' AND name = %s",  # noqa: S608
                [NAME],
            )
    School.objects.filter(schema_name__in=schemas).update(migration_state=state)


def replay_baseline(schemas: list[str], statements: list[str]) -> float:
    """The migration's SQL in each schema over this one connection, a transaction per school."""
    from django.db import connection, transaction

    connection.set_schema_to_public()
    start = time.perf_counter()
    for schema in schemas:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'SET LOCAL search_path = "{schema}", public')
            for statement in statements:
                cursor.execute(statement)
    return time.perf_counter() - start


def migrate_command(**options) -> None:
    from django.core.management import call_command

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        call_command("migrate_schemas", interactive=False, verbosity=0, stdout=sink, stderr=sink, **options)


def has_fast_path() -> bool:
    try:
        importlib.import_module("portal.migrate_fast")
    except ImportError:
        return False
    return True


def run(
    n_schools: int | None = None,
    *,
    per_school_sample: int = 20,
    say: Callable[[str], None] = print,
    progress: Callable[[str], None] = _stderr,
) -> MigrationResult:
    """Measure, over the school schemas in the database (Django set up); print; undo."""
    from django.conf import settings
    from django.db import connections

    from portal.models import School
    from portal.provisioning import migration_state_current

    schemas = school_schemas()
    if n_schools is not None and n_schools != len(schemas):
        raise SystemExit(f"{len(schemas)} schools in the database, {n_schools} expected")
    n = len(schemas)
    result = MigrationResult(schools=n)
    state_before = migration_state_current()
    fast = has_fast_path()
    result.command_path = (
        "captured from the template and replayed (portal.migrate_fast)"
        if fast
        else "each school migrated by Django (django-tenants' executor)"
    )
    with bench_migration():
        state_after = migration_state_current()
        statements = migration_sql()

        progress(f"baseline: {len(statements)} statements replayed in {n} schools ...")
        connections.close_all()
        result.baseline = replay_baseline(schemas, statements)
        done = migrated_schemas()
        if len(done & set(schemas)) != n:
            result.problems.append(f"baseline: {len(done & set(schemas))} of {n} schools have the index")
        progress(f"baseline: {result.baseline:.2f} s; undoing it")
        undo(schemas, state=state_before)

        progress(f"migrate_schemas over {n} schools ({result.command_path}) ...")
        connections.close_all()
        start = time.perf_counter()
        migrate_command()
        result.command = time.perf_counter() - start
        connections.close_all()
        progress(f"migrate_schemas: {result.command:.2f} s")
        done = migrated_schemas()
        if len(done & set(schemas)) != n or settings.TENANT_BASE_SCHEMA not in done:
            result.problems.append(
                f"migrate_schemas: {len(done & set(schemas))} of {n} schools (and template: "
                f"{settings.TENANT_BASE_SCHEMA in done}) have the index"
            )
        behind = School.objects.exclude(migration_state=state_after).count()
        if behind:
            result.problems.append(f"migrate_schemas: {behind} schools not recorded as current")

        k = min(per_school_sample, n)
        if k:
            sample = schemas[:: max(1, n // k)][:k]
            undo(sample, state=state_before)
            progress(f"per-school path on a sample of {k} schools ...")
            connections.close_all()
            start = time.perf_counter()
            migrate_command(**({"per_school": True} if fast else {}))
            result.sample_seconds = time.perf_counter() - start
            connections.close_all()
            result.sample = k
            if not set(sample) <= migrated_schemas():
                result.problems.append("per-school sample: not every school has the index")
        progress("undoing the bench migration")
        undo([*schemas, settings.TENANT_BASE_SCHEMA, "public"], state=state_before)
    connections.close_all()
    report(result, say=say)
    return result


def report(result: MigrationResult, *, say: Callable[[str], None] = print) -> None:
    n = result.schools
    say()
    say("## A real migration over the schools (bench/migration.py)")
    say()
    say(f"Migration: {NAME} (schools.Student: a nullable column {COLUMN} and an index), {n} schools.")
    say()
    say("| measurement | schools | total s | s/school | how |")
    say("|---|---:|---:|---:|---|")
    say(
        f"| 1. the migration's SQL replayed per schema, one connection | {n} | {result.baseline:.2f} | "
        f"{result.baseline / n:.4f} | sqlmigrate's SQL, one transaction per school |"
    )
    say(
        f"| 2. migrate_schemas | {n} | {result.command:.2f} | {result.command / n:.4f} | "
        f"{result.command_path}; public + template + schools |"
    )
    if result.sample:
        per = result.sample_seconds / result.sample
        say(
            f"| 3. migrate_schemas per school (sample) | {n}* | ~{per * n:.1f} | {per:.4f} | "
            f"measured on {result.sample}, extrapolated |"
        )
    say()
    verdict = "PASS" if result.ratio <= GOAL_RATIO else "FAIL"
    say(f"- migrate_schemas / replayed SQL: {result.ratio:.2f}x (goal <= {GOAL_RATIO:.0f}x): {verdict}")
    how = (
        "measured"
        if n == GOAL_SCHOOLS
        else f"scaled linearly from {n}; the public schema and the template are a fixed cost, so "
        "from fewer schools this overstates it"
    )
    verdict = "PASS" if result.at_goal <= GOAL_SECONDS else "FAIL"
    say(
        f"- migrate_schemas over {GOAL_SCHOOLS:,} schools: {result.at_goal:.1f} s ({how}; "
        f"goal <= {GOAL_SECONDS:.0f} s): {verdict}"
    )
    if result.sample:
        per = result.sample_seconds / result.sample
        say(f"- per-school path / migrate_schemas, per school: {per / (result.command / n):.1f}x")
    for problem in result.problems:
        say(f"- PROBLEM: {problem}")


def school_csv(n: int) -> bytes:
    out = io.StringIO()
    out.write("ma_truong,ten_truong,cap_hoc\r\n")
    for i in range(1, n + 1):
        out.write(f"bench-mig-{i:05d},Trường Bench {i:05d},thcs\r\n")
    return out.getvalue().encode("utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=None, help=f"schools (default {DEFAULT_N})")
    parser.add_argument("--large", action="store_true", help=f"same as --n {LARGE_N}")
    parser.add_argument("--per-school-sample", type=int, default=20, metavar="K")
    args = parser.parse_args(argv)
    n = LARGE_N if args.large else (args.n or DEFAULT_N)
    os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.pop("EXECUTOR", None)
    os.chdir(ROOT)
    from bench.support import throwaway_django

    _stderr(f"creating database hocba_bench_{os.getpid()} (DATABASE_URL's own database is not opened)")
    with throwaway_django():
        from portal.provisioning import schools_provision_from_csv

        start = time.perf_counter()
        step = max(1, n // 10)

        def on_progress(index, total, school, outcome):
            if index % step == 0 or index == total:
                _stderr(f"cloned {index}/{total} schools ({time.perf_counter() - start:.1f} s)")

        schools_provision_from_csv(actor=None, data=school_csv(n), filename="bench.csv", progress=on_progress)
        result = run(n, per_school_sample=args.per_school_sample)
    return 1 if result.problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("Interrupted; the bench database was dropped.", file=sys.stderr)
        sys.exit(130)
