"""How long it takes to create schools, and to run migrate_schemas over them when nothing changed.

    make bench-provisioning                     # 50 schools
    make bench-provisioning ARGS=--large        # 1,000 schools
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/hocba REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/provisioning.py [--n N | --large] [--migrate-sample K] [--visit-all-full]
        [--migration] [--what-if-no-user-fks]

Runs in a throwaway database (bench/support.py: hocba_bench_<pid> on the server of DATABASE_URL,
dropped at the end, also on failure or Ctrl-C; the database DATABASE_URL names is never opened).

In one run it measures:

1. provisioning N schools by cloning the template schema (schools_provision_from_csv), with the
   time per school in buckets of 100 (wall clock, and the server process's CPU time when the
   server runs on this machine: the CPU figure is what other load on a shared machine disturbs
   least), the slope of a straight line through them, and the time per school at the 1,000th
   school against the goal of 0.15 s (measured with --large, else read off the line);
2. provisioning K schools the way cloning replaces: School row, CREATE SCHEMA, then
   `migrate_schemas --schema <name> --tenant` (K is small because it is slow; the per-school
   figure is extrapolated from K). These K schools are removed again afterwards;
3. a no-op `migrate_schemas` over the N schools (the project's override skips schools whose
   recorded migration_state is current);
4. django-tenants' behaviour of visiting every schema: `migrate_schemas --all-schemas` over all
   N schools when N <= 100 (or with --visit-all-full), otherwise extrapolated from
   `migrate_schemas --schema <name> --tenant` timed on 10 schools.

--what-if-no-user-fks replays the clone without the school tables' foreign keys to
public.portal_user: each such key added two triggers to portal_user, and every key added re-read
all of them, so that cost grew with the schools. Since 9bff86f (issue 15) the schools have no such
keys (their user columns are checked by triggers of their own): the flag changes nothing there,
and is kept to reproduce the finding on an earlier revision.

The clone's growth (per-school buckets, the line, portal_user's triggers) is bench/provisioning_growth.py.

Which schools a command visited is read from the server, not from the command's output: the
schools whose django_migrations table was read while it ran (pg_stat_user_tables). Progress goes
to stderr, the figures to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.provisioning_growth import (  # noqa: E402 - needs ROOT on sys.path
    GOAL_SCHOOLS,
    backend_cpu_reader,
    clone_buckets,
    first_touch_ms,
    report_buckets,
    say,
    user_fk_triggers,
    without_user_fks,
)
from bench.support import throwaway_django  # noqa: E402 - needs ROOT on sys.path
from config.env import database_from_url  # noqa: E402

MAIN_PID = os.getpid()
DEFAULT_N = 50
LARGE_N = 1000
VISIT_ALL_FULL_MAX = 100  # above this many schools, --all-schemas is extrapolated from a sample
VISIT_SAMPLE = 10  # schools timed one by one with `migrate_schemas --schema X --tenant`
NOOP_REPEATS = 3
GOAL_PROVISION_SECONDS = 300.0  # 1,000 schools in under 5 minutes
GOAL_NOOP_SECONDS = 30.0  # a no-op migrate over 1,000 schools in under 30 seconds
LEVELS = ("tieu_hoc", "thcs", "thpt", "gdtx", "thcs;thpt", "tieu_hoc;thcs")
DIVISION_CODE = "bench-div"


def progress(message: str) -> None:
    """Progress goes to stderr, so that stdout holds only the figures."""
    print(f"  ... {message}", file=sys.stderr, flush=True)


# --- Measurements ----------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    schools: int
    seconds: float  # measured total, or the extrapolated total when extrapolated_from is set
    note: str = ""
    extrapolated_from: int | None = None

    @property
    def per_school(self) -> float:
        return self.seconds / self.schools if self.schools else float("nan")


@dataclass
class Results:
    rows: dict[str, Row] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    buckets: list[dict] = field(default_factory=list)  # per-school clone figures per bucket
    user_triggers: int = 0  # triggers on public.portal_user after the clone
    first_touch: dict[str, float] = field(default_factory=dict)  # table -> ms


def school_csv(n: int, *, width: int) -> bytes:
    out = io.StringIO()
    out.write("ma_truong,ten_truong,cap_hoc,ma_don_vi,dia_chi\r\n")
    for i in range(1, n + 1):
        code = f"bench-{i:0{width}d}"
        level = LEVELS[i % len(LEVELS)]
        division = DIVISION_CODE if i % 2 else ""
        out.write(f'{code},Trường Bench {i:0{width}d},"{level}",{division},"Số {i}, đường Bench"\r\n')
    return out.getvalue().encode("utf-8")


def migrate_quiet(**options) -> None:
    """call_command("migrate_schemas", ...) at verbosity 0, whatever it still writes swallowed."""
    from django.core.management import call_command

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        call_command("migrate_schemas", interactive=False, verbosity=0, stdout=sink, stderr=sink, **options)


def migration_table_reads() -> dict[str, int]:
    """Per school schema: how many times its django_migrations table has been read so far.

    A migrate run that visits a schema reads that table; one that skips it does not. Server
    processes report their counts when they end (the migration workers close their connections
    after each schema) or within a second when idle, hence the short wait.
    """
    from django.db import connection

    from portal.models import School

    time.sleep(1.1)
    connection.set_schema_to_public()
    schemas = set(School.objects.values_list("schema_name", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT schemaname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'django_migrations'"
        )
        return {schema: reads for schema, reads in cursor.fetchall() if schema in schemas}


def visited_since(before: dict[str, int]) -> int:
    after = migration_table_reads()
    return sum(1 for schema, reads in after.items() if reads > before.get(schema, 0))


def measure_clone(n: int, results: Results) -> None:
    from portal.models import School
    from portal.provisioning import schools_provision_from_csv

    width = max(4, len(str(n)))
    data = school_csv(n, width=width)
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    step = max(1, n // 10)
    backend_cpu = backend_cpu_reader()

    def on_progress(index, total, school, outcome):
        stamps.append(time.perf_counter())
        if backend_cpu is not None:
            cpu_stamps.append(backend_cpu())
        if index % step == 0 or index == total:
            progress(f"cloned {index}/{total} schools ({stamps[-1] - start:.1f} s)")

    cpu_start = backend_cpu() if backend_cpu is not None else 0.0
    start = time.perf_counter()
    report = schools_provision_from_csv(actor=None, data=data, filename="bench.csv", progress=on_progress)
    total = time.perf_counter() - start
    if len(report.created) != n:
        results.problems.append(f"clone: expected {n} schools created, got {len(report.created)}")
    results.rows["clone"] = Row(
        "1. provision by clone (schools_provision_from_csv)", n, total, "whole CSV run, measured"
    )
    each = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    cpu_each = [b - a for a, b in zip([cpu_start, *cpu_stamps], cpu_stamps, strict=False)]
    # Does cloning slow down as schools accumulate? Compare the first and the last tenth (medians
    # for the note, so that a burst of load from elsewhere on the machine does not decide it).
    tenth = max(1, n // 10)
    if n >= 20:
        results.rows["clone_first"] = Row(f"   first {tenth} schools", tenth, sum(each[:tenth]), "measured")
        results.rows["clone_last"] = Row(f"   last {tenth} schools", tenth, sum(each[-tenth:]), "measured")
        first, last = statistics.median(each[:tenth]), statistics.median(each[-tenth:])
        if last > 1.5 * first:
            results.notes.append(
                f"cloning slows down as schools accumulate (median {first:.3f} s/school for the first "
                f"{tenth}, {last:.3f} for the last {tenth}): a projection beyond N = {n} is optimistic."
            )
    slowest = max(range(n), key=each.__getitem__)
    results.details.append(
        f"Clone, one school: median {statistics.median(each):.3f} s, slowest {each[slowest]:.3f} s "
        f"(school {slowest + 1} of {n}; the first also parses the CSV and prepares the template)."
    )
    results.buckets = clone_buckets(each, cpu_each)
    results.user_triggers = user_fk_triggers()
    created = School.objects.filter(code__startswith="bench-").count()
    if created != n:
        results.problems.append(f"clone: {created} School rows instead of {n}")


def measure_migrations(k: int, results: Results) -> None:
    """K schools created by migrations, then removed again so that 3 and 4 see the N clones only."""
    from django.db import connection

    from portal.models import School
    from portal.provisioning import migration_state_current

    if k == 0:
        return
    codes = [f"bench-m-{i:04d}" for i in range(1, k + 1)]
    total = 0.0
    for index, code in enumerate(codes, start=1):
        start = time.perf_counter()
        school = School(
            code=code,
            name=f"Trường Bench migrate {index:04d}",
            levels=["lower_secondary"],
            schema_name=School.schema_name_for(code),
        )
        school.save()
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{school.schema_name}"')
        migrate_quiet(schema_name=school.schema_name, tenant=True)
        total += time.perf_counter() - start
        progress(f"migrated {index}/{k} schools ({total:.1f} s)")
    results.rows["migrate"] = Row(
        "2. provision by migrations (row + CREATE SCHEMA + migrate)",
        k,
        total,
        f"measured on {k}",
    )
    connection.set_schema_to_public()
    stale = School.objects.filter(code__in=codes).exclude(migration_state=migration_state_current()).count()
    if stale:
        results.notes.append(
            f"`migrate_schemas --schema X --tenant` leaves migration_state as it was ({stale} of {k} "
            "schools), so the next full run visits those schools once more."
        )
    # Remove them: steps 3 and 4 are over the N cloned schools only.
    with connection.cursor() as cursor:
        for code in codes:
            cursor.execute(f'DROP SCHEMA "{School.schema_name_for(code)}" CASCADE')
    School.objects.filter(code__in=codes).delete()


def measure_noop(n: int, results: Results) -> None:
    from django.db import connections

    timings = []
    for attempt in range(1, NOOP_REPEATS + 1):
        before = migration_table_reads()
        connections.close_all()
        start = time.perf_counter()
        migrate_quiet()
        timings.append(time.perf_counter() - start)
        connections.close_all()
        visited = visited_since(before)
        progress(
            f"no-op migrate_schemas {attempt}/{NOOP_REPEATS}: {timings[-1]:.2f} s, {visited} schools visited"
        )
        if visited:
            results.problems.append(
                f"no-op migrate_schemas run {attempt} visited {visited} of {n} schools (expected none)"
            )
    results.rows["noop"] = Row(
        "3. no-op migrate_schemas (skips current schools)",
        n,
        statistics.median(timings),
        f"median of {NOOP_REPEATS}; public + template + {n} schools",
    )


def measure_visit_all(n: int, results: Results, *, full: bool) -> None:
    from django.conf import settings
    from django.db import connections

    from portal.models import School

    workers = settings.TENANT_MULTIPROCESSING_MAX_PROCESSES
    names = list(School.objects.order_by("pk").values_list("schema_name", flat=True))
    sample = names[:: max(1, len(names) // VISIT_SAMPLE)][:VISIT_SAMPLE]
    total = 0.0
    for index, schema in enumerate(sample, start=1):
        connections.close_all()
        start = time.perf_counter()
        migrate_quiet(schema_name=schema, tenant=True)
        total += time.perf_counter() - start
        progress(f"migrate_schemas --schema {schema} --tenant {index}/{len(sample)} ({total:.1f} s)")
    per_school = total / len(sample)
    results.rows["visit_one"] = Row(
        "   one school: migrate_schemas --schema X --tenant",
        len(sample),
        total,
        f"measured on {len(sample)}, one after another",
    )
    if n <= VISIT_ALL_FULL_MAX or full:
        before = migration_table_reads()
        connections.close_all()
        progress(f"migrate_schemas --all-schemas over {n} schools ...")
        start = time.perf_counter()
        migrate_quiet(all_schemas=True)
        seconds = time.perf_counter() - start
        connections.close_all()
        visited = visited_since(before)
        progress(f"migrate_schemas --all-schemas: {seconds:.1f} s, {visited} schools visited")
        if visited != n:
            results.problems.append(f"--all-schemas visited {visited} of {n} schools (expected all)")
        results.rows["visit_all"] = Row(
            "4. migrate_schemas --all-schemas (visits every school)",
            n,
            seconds,
            f"measured over all {n} ({workers} worker processes)",
        )
    else:
        results.rows["visit_all"] = Row(
            "4. migrate_schemas --all-schemas (visits every school)",
            n,
            per_school * n,
            f"extrapolated: one-school runs x {n} (one after another; the command uses {workers} workers)",
            extrapolated_from=len(sample),
        )


# --- Report ----------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    header = ("measurement", "schools", "total s", "s/school", "how")
    lines = [
        (
            r.label,
            f"{r.schools}" if r.extrapolated_from is None else f"{r.schools}*",
            f"{r.seconds:.2f}" if r.extrapolated_from is None else f"~{r.seconds:.1f}",
            f"{r.per_school:.4f}",
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]
    out = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |"]
    out.append(
        "|"
        + "|".join(("-" * (w + 1) + ":") if i in (1, 2, 3) else "-" * (w + 2) for i, w in enumerate(widths))
        + "|"
    )
    for line in lines:
        cells = [
            cell.rjust(widths[i]) if i in (1, 2, 3) else cell.ljust(widths[i]) for i, cell in enumerate(line)
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def report(args, results: Results, machine: dict[str, str]) -> None:
    rows = results.rows
    n = args.n
    say()
    say("## Provisioning benchmark (bench/provisioning.py)")
    say()
    for key, value in machine.items():
        say(f"- {key}: {value}")
    say()
    say(table(list(rows.values())))
    say()
    if any(r.extrapolated_from for r in rows.values()):
        say("\\* extrapolated, not measured over that many schools.")
    if "migrate" in rows:
        say(
            f"Row 2 is measured on {rows['migrate'].schools} schools only; "
            "its per-school figure is extrapolated below."
        )
    for detail in results.details:
        say(detail)
    say()
    if results.buckets:
        report_buckets(results)
    clone = rows["clone"]
    noop = rows["noop"]
    visit = rows["visit_all"]
    say("Ratios")
    if "migrate" in rows:
        migrate = rows["migrate"]
        say(
            f"- migrations ÷ clone, per school: {migrate.per_school:.3f} ÷ {clone.per_school:.3f} = "
            f"{migrate.per_school / clone.per_school:.1f}× (by migrations, {GOAL_SCHOOLS:,} schools "
            f"would take ~{migrate.per_school * GOAL_SCHOOLS / 60:.1f} min, extrapolated from "
            f"{migrate.schools})"
        )
    say(
        f"- visit-all ÷ skip-current no-op, total over {n} schools: {visit.seconds:.2f} ÷ "
        f"{noop.seconds:.2f} = {visit.seconds / noop.seconds:.0f}×"
        + (" (visit-all extrapolated)" if visit.extrapolated_from else "")
    )
    say()
    measured_at_goal = n >= GOAL_SCHOOLS
    provision_goal = clone.per_school * GOAL_SCHOOLS
    # The no-op is mostly a fixed cost (public schema, template check); scaling all of it with
    # the number of schools overstates it, which is the safe side.
    noop_goal = noop.seconds if measured_at_goal else noop.seconds * max(1.0, GOAL_SCHOOLS / n)
    how = "measured" if measured_at_goal else f"projected linearly from {n} schools"
    say(f"Goals ({how})")
    say(
        f"- {GOAL_SCHOOLS:,} schools provisioned in under {GOAL_PROVISION_SECONDS / 60:.0f} min "
        f"(< {GOAL_PROVISION_SECONDS / GOAL_SCHOOLS:.1f} s/school): {clone.per_school:.3f} s/school, "
        f"{provision_goal:.0f} s: {'MET' if provision_goal < GOAL_PROVISION_SECONDS else 'NOT MET'}"
    )
    say(
        f"- no-op migrate over {GOAL_SCHOOLS:,} schools in under {GOAL_NOOP_SECONDS:.0f} s: "
        f"{noop_goal:.2f} s: {'MET' if noop_goal < GOAL_NOOP_SECONDS else 'NOT MET'}"
        + ("" if measured_at_goal else " (an upper bound: most of a no-op run is a fixed cost)")
    )
    for note in results.notes:
        say(f"- note: {note}")
    for problem in results.problems:
        say(f"- PROBLEM: {problem}")


# --- Main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--n", type=int, default=None, help=f"schools to provision by clone (default {DEFAULT_N})"
    )
    parser.add_argument("--large", action="store_true", help=f"same as --n {LARGE_N}")
    parser.add_argument(
        "--migrate-sample",
        type=int,
        default=None,
        metavar="K",
        help="schools to provision by migrations for the comparison (default min(N, 10))",
    )
    parser.add_argument(
        "--visit-all-full",
        action="store_true",
        help=f"run --all-schemas over all N schools also when N > {VISIT_ALL_FULL_MAX}",
    )
    parser.add_argument(
        "--what-if-no-user-fks",
        action="store_true",
        help="an experiment: clone without the school tables' foreign keys to public.portal_user",
    )
    parser.add_argument(
        "--migration",
        action="store_true",
        help="then a real migration over the N schools against its SQL replayed (bench/migration.py)",
    )
    args = parser.parse_args(argv)
    if args.large and args.n is not None and args.n != LARGE_N:
        parser.error("--large means --n 1000; give one or the other")
    args.n = LARGE_N if args.large else (args.n if args.n is not None else DEFAULT_N)
    if args.n < 1:
        parser.error("--n must be at least 1")
    if args.migrate_sample is None:
        args.migrate_sample = min(args.n, 10)
    if args.migrate_sample < 0:
        parser.error("--migrate-sample must be 0 or more")
    return args


def on_sigterm(signum, frame):
    if os.getpid() != MAIN_PID:  # a forked migration worker: end as it would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def clone_method() -> str:
    """How schools are cloned in this run, as far as the code says (pg_dump replay or the function)."""
    try:
        from portal.clone import pg_dump_binary
    except ImportError:
        return "django-tenants clone_schema()"
    binary = pg_dump_binary()
    return f"replaying a pg_dump of the template ({binary})" if binary else "django-tenants clone_schema()"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    source_url = os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    if database_from_url(source_url)["NAME"] == f"hocba_bench_{MAIN_PID}":
        raise SystemExit("DATABASE_URL already names this run's bench database; refusing to use it.")
    os.environ["DJANGO_DEBUG"] = "0"  # no query log, as in production
    os.environ.pop("EXECUTOR", None)  # django-tenants reads it; the override chooses its own
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, on_sigterm)
    progress(f"creating database hocba_bench_{MAIN_PID} (DATABASE_URL's own database is not opened)")

    with throwaway_django() as server_version:
        import django
        from django.conf import settings
        from django.db import connection, connections

        from portal.choices import DivisionKind
        from portal.models import Division
        from portal.provisioning import _schema_migration_state, migration_state_current

        progress("public schema and template migrated")
        machine = {
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "command": " ".join(["bench/provisioning.py", *argv]),
            "revision": git_revision(),
            "machine": f"{platform.node()}, nproc {len(os.sched_getaffinity(0))}, {platform.machine()}",
            "PostgreSQL server": server_version,
            "software": f"Python {platform.python_version()}, Django {django.get_version()}, "
            f"django-tenants {importlib.metadata.version('django-tenants')}, "
            f"psycopg {importlib.metadata.version('psycopg')}",
            "cloning": clone_method(),
            "schools": f"N = {args.n} by clone, K = {args.migrate_sample} by migrations; "
            f"migrate_schemas workers: {settings.TENANT_MULTIPROCESSING_MAX_PROCESSES}",
        }
        results = Results()
        connection.set_schema_to_public()
        state_at_start = migration_state_current()
        if _schema_migration_state(settings.TENANT_BASE_SCHEMA) != state_at_start:
            results.problems.append(
                "the template's django_migrations digest differs from migration_state_current(): "
                "every provisioning run and every migrate_schemas re-migrates the template"
            )
        Division.objects.create(
            code=DIVISION_CODE, name="Phòng GD&ĐT Bench", kind=DivisionKind.DISTRICT_OFFICE
        )

        # Each step after the first gets a fresh server session, as a new command would.
        if args.what_if_no_user_fks:
            without_user_fks()
            machine["cloning"] += ", WITHOUT the foreign keys to public.portal_user (--what-if-no-user-fks)"
        measure_clone(args.n, results)
        connections.close_all()
        results.first_touch = {table: first_touch_ms(table) for table in ("portal_user", "portal_school")}
        measure_migrations(args.migrate_sample, results)
        connections.close_all()
        measure_noop(args.n, results)
        measure_visit_all(args.n, results, full=args.visit_all_full)
        if migration_state_current() != state_at_start:
            results.problems.append(
                "the migrations on disk changed during the run (the working tree was edited): "
                "the figures mix two states; run it again"
            )
        report(args, results, machine)
        if args.migration:
            from bench.migration import run as migration_run

            connections.close_all()
            results.problems += migration_run(args.n).problems
    progress(f"dropped database hocba_bench_{MAIN_PID}")
    return 1 if results.problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("Interrupted; the bench database was dropped.", file=sys.stderr)
        sys.exit(130)
