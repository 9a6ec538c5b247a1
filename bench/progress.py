"""The cost of keeping a school's progress row current (issue 12): one recount, against the change
it accompanies.

    make bench-progress
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/progress.py [--repeat 200]
        [--database hocba_bench_progress] [--fresh] [--explain]

Every service that changes what a progress row counts recounts the row in its own transaction
(portal.progress.services.progress_recount: the row created if missing and locked, then each
app's part counted in the school's schema: schools, transcripts, registry). This measures, in one
run, with --repeat N repetitions each (median and p95):

1. `progress_recount(school=…, school_year=…)` alone, all parts, from the school's schema, in a
   transaction rolled back after (the row is current, so it writes nothing); then the row's lock
   alone (`parts=[]`) and each part on its own (its figure less the lock's);
2. the statements one recount issues (CaptureQueriesContext: all, and without django-tenants'
   `SET search_path`), which must be the same at every school, and, at the big school and the one
   with earlier years, each statement's time seen by Django (an execute wrapper) and in the server
   (EXPLAIN ANALYZE: planning and execution; `--explain` prints the plans of the slowest);
3. the peer, the change a recount accompanies, each in a transaction rolled back after:
   `year_record_forwarding_note` (issued → queued, the relay's step; the system) and
   `year_record_confirm` (data complete → confirmed, by the class's homeroom teacher), each
   including its recount; the time spent inside that recount is taken in the same call (the
   bench wraps `portal.progress.services.progress_recount` with a timer for the duration of
   this measurement), so the change less its recount and the recount's share of the change come
   from the same repetitions;
4. prototypes of the rewrite proposed in docs/benchmarks.md (the bench's SQL, not the services'):
   the row's lock, then all the parts' counting statements sent as one statement; and the lock
   with the records-by-status statement alone (what a record's status step changes); beside the
   recount measured again just before them;
5. the recount without, then with, the two indexes proposed there (the waiting students' partial
   index, a covering index for the books' count), back to back in one transaction rolled back
   after, so the indexes never stay.

At three schools: a big one (45 classes of 45 students, 2,025 students, one school year), a small
one (5 classes of 40, 200 students), and the big one again holding four earlier school years as
well (`bp-hist`: the year's rows are a fifth of each table's). Each school is provisioned by
cloning the template (portal.provisioning.school_provision) and seeded by
transcripts.demo.school_demo_seed (two classes with a year of assessments); the two classes'
years are approved by the principal (class_year_close: results computed) and the first class's
records created by its homeroom teacher (year_records_create: real XML, left at data complete).
The other classes are copies of those two, inserted in bulk past the services (students,
enrolments, the years' results); in the current year all but the last four are approved and their
students get year records in a spread of statuses (confirmed, signed by the homeroom teacher and
the principal, issued, queued, acknowledged, rejected; the first class's own XML as every record's
document), with the public index rows (portal.IssuedRecord) and the messages to the Ministry
(registry.OutboxMessage) for the issued ones, the rejected with the Ministry's reason codes;
earlier years are approved throughout and every record acknowledged. Students whose results wait
for August get no record, as in the service. Then `progress_reconcile(schools=[…])` makes the
rows current and the database is vacuumed and analysed.

Like bench/dashboard.py, the data set is kept in a database of its own on the server of
DATABASE_URL (`--database`, default `hocba_bench_progress`; the database DATABASE_URL names is
never opened) and reused while a marker table says it is what this script makes; otherwise, or
with `--fresh`, the database is dropped and made again (about a minute and a half). Progress goes to
stderr, the figures to stdout. Exit status 1 when the recount's statement count differs between
the schools.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.progress_data import (
    SLOW_MS,
    BenchSchool,
    bench_django,
    bench_schools,
    dataset_dirty,
    dataset_make,
    dataset_present,
    progress,
)
from bench.support import percentile

# --- measuring -----------------------------------------------------------------------------------


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def repeat(n: int, run: Callable[[], Any]) -> list[Any]:
    for _ in range(5):  # warm-up
        run()
    return [run() for _ in range(n)]


def ms(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, percentile(values, 0.95) * 1000


def recount_times(bench: BenchSchool, n: int, parts: list[str] | None) -> list[float]:
    from portal.progress.services import progress_recount

    def run() -> float:
        with rolled_back():
            start = time.perf_counter()
            drift = progress_recount(school=bench.school, school_year=bench.year, parts=parts)
            elapsed = time.perf_counter() - start
        assert not drift.changes, drift.changes  # the row was current
        return elapsed

    with bench.school:
        return repeat(n, run)


LABELS = (  # what each statement of a recount is, by what it reads
    ("SET search_path", "django-tenants: SET search_path"),
    ("SAVEPOINT", "SAVEPOINT"),
    ("RELEASE SAVEPOINT", "RELEASE SAVEPOINT"),
    ("INSERT INTO public.portal_schoolprogress", "the row created (when missing)"),
    ("registry_outboxmessage", "registry: rejections by reason"),
    ('COUNT(DISTINCT "schools_enrolment"."student_id")', "schools: students, missing IDs"),
    ('COUNT(*) AS "__count" FROM "schools_schoolclass"', "schools: classes"),
    ('"__col1"', "transcripts: books complete, approved"),
    ('FROM "transcripts_studentyear"', "transcripts: waiting for August"),
    ('FROM "transcripts_yearrecord"', "transcripts: records by status"),
    ('FROM "portal_schoolprogress"', "the row's lock: SELECT … FOR UPDATE"),
)


def label(sql: str) -> str:
    text = " ".join(sql.split())
    for needle, name in LABELS:
        if needle in text:
            return name
    return text[:40]


def recount_statements(bench: BenchSchool, n: int) -> tuple[list[str], list[list[float]]]:
    """The statements of one recount (as CaptureQueriesContext records them), and each
    statement's time seen by Django (an execute wrapper: the round trip and the driver) over n
    recounts; the last list holds those recounts' own times."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.progress.services import progress_recount

    with bench.school, rolled_back(), CaptureQueriesContext(connection) as queries:
        progress_recount(school=bench.school, school_year=bench.year)
    statements = [q["sql"] for q in queries]
    times: list[list[float]] = [[] for _ in statements]
    current: list[float] = []

    def timer(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            current.append(time.perf_counter() - start)

    walls: list[float] = []
    with bench.school, connection.execute_wrapper(timer):
        for _ in range(n):
            current.clear()
            with rolled_back():
                start = time.perf_counter()
                progress_recount(school=bench.school, school_year=bench.year)
                walls.append(time.perf_counter() - start)
            assert len(current) == len(statements), (len(current), len(statements))
            for i, elapsed in enumerate(current):
                times[i].append(elapsed)
    return statements, [*times, walls]


def without_set(statements: list[str]) -> list[str]:
    return [s for s in statements if not s.startswith("SET search_path")]


@dataclass
class Explained:
    planning: float  # ms, median of the runs
    execution: float
    plan: str  # the last run's


def explained(bench: BenchSchool, statements: list[str], runs: int = 5) -> list[Explained | None]:
    """Each statement's planning and execution time in the server, by EXPLAIN (ANALYZE, BUFFERS)
    in the school's schema, in a transaction rolled back after; None for SET and savepoints."""
    from django.db import connection

    out: list[Explained | None] = []
    with bench.school, rolled_back(), connection.cursor() as cursor:
        for sql in statements:
            if sql.startswith(("SET search_path", "SAVEPOINT", "RELEASE SAVEPOINT")):
                out.append(None)
                continue
            planning, execution, plan = [], [], ""
            for _ in range(runs):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                planned = re.search(r"Planning Time: ([0-9.]+) ms", plan)
                executed = re.search(r"Execution Time: ([0-9.]+) ms", plan)
                planning.append(float(planned.group(1)) if planned else float("nan"))
                execution.append(float(executed.group(1)) if executed else float("nan"))
            out.append(Explained(statistics.median(planning), statistics.median(execution), plan))
    return out


COUNTING = ("registry:", "schools:", "transcripts:")  # the labels of the parts' counting statements


def prototype_times(bench: BenchSchool, n: int, statements: list[str], *, only: str = "") -> list[float]:
    """A prototype of the rewrite proposed in the report (not the services' code): the row's lock,
    then the parts' counting statements, as the recount issues them, sent as ONE statement
    (`SELECT (SELECT json_agg(q) FROM (<statement>) q), …`): the same server work in one round
    trip, no query built by the ORM. `only`: just the statements whose label starts with it."""
    from django.db import connection

    from portal.models_progress import SchoolProgress

    chosen = [s for s in statements if label(s).startswith(COUNTING) and label(s).startswith(only)]
    assert chosen
    # The recount's own statements, as captured: no outside input.
    combined = "SELECT " + ", ".join(f"(SELECT json_agg(q) FROM ({s}) q)" for s in chosen)  # noqa: S608

    def run() -> float:
        with rolled_back():
            start = time.perf_counter()
            row = SchoolProgress.objects.select_for_update().filter(
                school=bench.school, school_year=bench.year
            )
            assert row.first() is not None
            with connection.cursor() as cursor:
                cursor.execute(combined)
                cursor.fetchone()
            return time.perf_counter() - start

    with bench.school:
        return repeat(n, run)


def index_trial_times(bench: BenchSchool, n: int) -> tuple[list[float], list[float]]:
    """The recount without, then with, the two indexes proposed in docs/benchmarks.md (the waiting
    students' partial index, a covering index for the books' count), back to back in one
    transaction rolled back at the end (so the indexes are gone again)."""
    from django.db import connection

    from portal.progress.services import progress_recount
    from transcripts.rules.codec import SUMMER_OUTCOMES

    waiting = ", ".join(f"'\"{outcome}\"'" for outcome in sorted(str(o) for o in SUMMER_OUTCOMES))

    def run() -> float:
        start = time.perf_counter()
        progress_recount(school=bench.school, school_year=bench.year)
        return time.perf_counter() - start

    with bench.school, rolled_back():
        without = repeat(n, run)
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX bench_studentyear_waiting ON transcripts_studentyear (enrolment_id)"
                f" WHERE (results -> 'outcome') = ANY (ARRAY[{waiting}]::jsonb[])"
            )
            cursor.execute(
                "CREATE INDEX bench_studentyear_computed ON transcripts_studentyear (enrolment_id)"
                " INCLUDE (computed_at)"
            )
            cursor.execute("ANALYZE transcripts_studentyear")
        return without, repeat(n, run)


@dataclass
class ChangeFigures:
    total: list[float]
    recount: list[float]
    statements: int
    statements_real: int
    recount_statements: int


def change_times(bench: BenchSchool, n: int, change: Callable[[], Any]) -> ChangeFigures:
    """The change, its recount included, each in a transaction rolled back after; the time
    inside progress_recount taken in the same call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.progress import services as progress_services

    original = progress_services.progress_recount
    inside: list[float] = []
    recount_queries: list[int] = []
    capture: list[CaptureQueriesContext] = []

    def timed_recount(**kwargs: Any) -> Any:
        before = len(capture[0].captured_queries) if capture else 0
        start = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            inside.append(time.perf_counter() - start)
            if capture:
                recount_queries.append(len(capture[0].captured_queries) - before)

    def run() -> tuple[float, float]:
        inside.clear()
        with rolled_back():
            start = time.perf_counter()
            change()
            elapsed = time.perf_counter() - start
        assert len(inside) == 1, f"{len(inside)} recounts in one change"
        return elapsed, inside[0]

    progress_services.progress_recount = timed_recount  # type: ignore[assignment]
    try:
        with bench.school:
            pairs = repeat(n, run)
            with CaptureQueriesContext(connection) as queries:
                capture.append(queries)
                run()
            capture.clear()
    finally:
        progress_services.progress_recount = original  # type: ignore[assignment]
    sql = [q["sql"] for q in queries]
    return ChangeFigures(
        total=[t for t, _r in pairs],
        recount=[r for _t, r in pairs],
        statements=len(sql),
        statements_real=len(without_set(sql)),
        recount_statements=recount_queries[-1],
    )


def peers(bench: BenchSchool) -> dict[str, Callable[[], Any]]:
    """The changes a recount accompanies, on one record each (the transaction rolls them back)."""
    from schools.models import SchoolClass
    from transcripts.models import YearRecord
    from transcripts.records.services import year_record_confirm, year_record_forwarding_note

    with bench.school:
        issued = YearRecord.objects.filter(status="issued").order_by("pk").first()
        first = SchoolClass.objects.filter(homeroom_teacher=bench.homeroom).get()
        complete = (
            YearRecord.objects.filter(status="data_complete", enrolment__school_class=first)
            .order_by("pk")
            .first()
        )
    assert issued is not None and complete is not None
    school, homeroom = bench.school, bench.homeroom
    return {
        "forwarding note, issued → queued (the relay)": lambda: year_record_forwarding_note(
            school=school, record_id=issued.record_id, version=issued.version, to_status="queued"
        ),
        "confirm, data complete → confirmed (homeroom teacher)": lambda: year_record_confirm(
            actor=homeroom, school=school, record=complete
        ),
    }


# --- the run -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="repetitions per measurement (default 200)")
    parser.add_argument("--database", default="hocba_bench_progress", help="the bench's own database")
    parser.add_argument("--fresh", action="store_true", help="drop the bench's database and make it again")
    parser.add_argument("--explain", action="store_true", help="print the plans of the slowest statements")
    args = parser.parse_args()

    fresh = args.fresh
    while True:
        with bench_django(args.database, fresh=fresh) as server_version:
            if not dataset_present():
                if dataset_dirty():
                    progress("the database holds another or an unfinished data set: making it again")
                    fresh = True
                    continue
                progress("making the data set (two schools)")
                started = time.perf_counter()
                dataset_make()
                progress(f"data set made in {time.perf_counter() - started:.0f} s")
            return measure(args.repeat, server_version, explain=args.explain)


def pair(values: list[float]) -> str:
    median, p95 = ms(values)
    return f"{median:7.2f} / {p95:<7.2f}"


def measure(n: int, server_version: str, *, explain: bool) -> int:
    import django

    from portal.progress.services import progress_parts

    every = bench_schools()
    big, small = every[0], every[1]
    status = 0
    print(
        f"Progress recount benchmark · {platform.node()} · {os.cpu_count()} cores · "
        f"PostgreSQL {server_version} · Python {platform.python_version()} · "
        f"Django {django.get_version()} · {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"school year {big.year}; {n} repetitions each after 5 warm-up; ms, median / p95\n")
    print(f"  {'school':<10}{'students':>10}{'classes':>9}{'records':>9}{'years held':>12}")
    for bench in every:
        sizes = f"{bench.students:>10,}{bench.classes:>9}{bench.records:>9,}{bench.years:>12}"
        print(f"  {bench.school.code:<10}{sizes}")
    print("  (students, classes and records of the school year measured)\n")
    heads = "".join(f"{b.school.code + ' (' + format(b.students, ',') + ')':<20}" for b in every)

    # 1. The recount alone, its lock alone and each part.
    parts = progress_parts()
    figures: dict[str, dict[str, list[float]]] = {}
    for bench in every:
        progress(f"recount at {bench.school.code}")
        rows = {
            "all parts": recount_times(bench, n, None),
            "the row's lock alone": recount_times(bench, n, []),
        }
        for part in parts:
            rows[f"part {part} (less the lock)"] = recount_times(bench, n, [part])
        figures[bench.school.code] = rows
    print(f"1. progress_recount, rolled back     {heads}{big.school.code} ÷ {small.school.code} (medians)")
    lock = {b.school.code: statistics.median(figures[b.school.code]["the row's lock alone"]) for b in every}
    for name in figures[big.school.code]:
        cells, medians = [], []
        for b in every:
            values = figures[b.school.code][name]
            if name.startswith("part "):
                values = [v - lock[b.school.code] for v in values]
                cells.append(f"{statistics.median(values) * 1000:7.2f}{'':13}")
            else:
                cells.append(pair(values) + "    ")
            medians.append(statistics.median(values))
        print(f"   {name:<33}{''.join(cells)}{medians[0] / medians[1]:5.1f}×")
    print()

    # 2. Statements, and where a recount's time goes at the big school.
    progress("statements")
    found = {b.school.code: recount_statements(b, n) for b in every}
    counts = {code: (len(sql), len(without_set(sql))) for code, (sql, _t) in found.items()}
    same = len(set(counts.values())) == 1
    print(
        "2. statements a recount issues (CaptureQueriesContext): "
        + ", ".join(f"{code} {a} ({b} without SET search_path)" for code, (a, b) in counts.items())
        + ("" if same else "   PROBLEM: the count depends on the school")
    )
    if not same:
        status = 1
    for bench in (big, every[-1]) if len(every) > 2 else (big,):
        sql, times = found[bench.school.code]
        times, walls = times[:-1], times[-1]
        plans = explained(bench, sql)
        print(
            f"   at {bench.school.code}: each statement's time seen by Django (median of {n} recounts) and in"
            " the server (EXPLAIN ANALYZE, median of 5: planning + execution)"
        )
        print(f"   {'#':>3}  {'statement':<40}{'Django':>9}{'planning':>10}{'execution':>11}")
        sums = {"django": 0.0, "planning": 0.0, "execution": 0.0, "set": 0.0}
        for i, (statement, elapsed, plan) in enumerate(zip(sql, times, plans, strict=True), start=1):
            django_ms = statistics.median(elapsed) * 1000
            sums["django"] += django_ms
            if statement.startswith("SET search_path"):
                sums["set"] += django_ms
            server = f"{plan.planning:10.3f}{plan.execution:11.3f}" if plan else f"{'':21}"
            if plan:
                sums["planning"] += plan.planning
                sums["execution"] += plan.execution
            print(f"   {i:>3}  {label(statement):<40}{django_ms:9.3f}{server}")
        wall = statistics.median(walls) * 1000
        server = f"{sums['planning']:10.3f}{sums['execution']:11.3f}"
        print(f"   {'':>3}  {'in all':<40}{sums['django']:9.3f}{server}")
        print(
            f"   of these recounts' {wall:.2f} ms (median): {sums['django']:.2f} ms in statements "
            f"({sums['set']:.2f} of them in SET search_path), {wall - sums['django']:.2f} ms outside them"
            " (Python: the ORM building the queries, the counters compared)"
        )
        if explain:
            slowest = sorted(
                ((p.planning + p.execution, s, p) for s, p in zip(sql, plans, strict=True) if p),
                key=lambda item: item[0],
                reverse=True,
            )
            for total, statement, plan in slowest[:3]:
                print(f"\n   --- {label(statement)}: {total:.3f} ms ---\n   {' '.join(statement.split())}\n")
                print("\n".join("     " + line for line in plan.plan.splitlines()))
        print()

    # 3. The changes it accompanies.
    print("3. the change, its recount included, rolled back (the recount timed inside the same call)")
    for bench in every:
        for name, change in peers(bench).items():
            progress(f"change at {bench.school.code}: {name}")
            c = change_times(bench, n, change)
            rest = [t - r for t, r in zip(c.total, c.recount, strict=True)]
            share = statistics.median(r / t for t, r in zip(c.total, c.recount, strict=True))
            print(f"   {bench.school.code}: {name}")
            print(
                f"     the change, recount included  {pair(c.total)}  statements {c.statements}"
                f" ({c.statements_real} without SET)"
            )
            print(f"     its recount                   {pair(c.recount)}  statements {c.recount_statements}")
            print(f"     the change less its recount   {pair(rest)}")
            print(
                f"     recount ÷ change {share:.2f}; recount ÷ the change less it "
                f"{statistics.median(r / o for r, o in zip(c.recount, rest, strict=True)):.1f}×"
                " (each repetition, median)"
            )
    print()

    # 4. Prototypes of the rewrite: one round trip for the counting.
    progress("prototypes")
    print(
        "4. prototypes of the rewrite (the bench's SQL, not the services'): the row's lock, then the"
        " parts' statements sent as one"
    )
    print(f"   {'':<46}{heads}")
    rows4: dict[str, list[str]] = {}
    for b in every:
        rows4.setdefault("progress_recount today (measured again here)", []).append(
            pair(recount_times(b, n, None))
        )
        for name, only in (
            ("lock + all parts' counting in one statement", ""),
            ("lock + records by status only, one statement", "transcripts: records"),
        ):
            rows4.setdefault(name, []).append(pair(prototype_times(b, n, found[b.school.code][0], only=only)))
    for name, cells in rows4.items():
        print(f"   {name:<46}" + "".join(cell + "    " for cell in cells))
    print()

    # 5. The indexes proposed, tried in a transaction rolled back after.
    progress("indexes")
    print(
        "5. progress_recount without, then with, the two indexes proposed (made in a transaction rolled"
        " back after: the waiting students' partial index, a covering index for the books' count)"
    )
    print(f"   {'':<46}{heads}")
    trials = [index_trial_times(b, n) for b in every]
    print(f"   {'without (measured again, just before)':<46}" + "".join(pair(w) + "    " for w, _i in trials))
    print(f"   {'with the two indexes':<46}" + "".join(pair(i) + "    " for _w, i in trials))
    print()
    recount_big = statistics.median(figures[big.school.code]["all parts"]) * 1000
    verdict = "over" if recount_big > SLOW_MS else "under"
    print(
        f"recount at {big.students:,} students: {recount_big:.1f} ms (median),"
        f" {verdict} the {SLOW_MS:.0f} ms mark · load average at the end {os.getloadavg()[0]:.1f}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
