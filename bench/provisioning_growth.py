"""bench/provisioning.py, the clone's growth: time per school as schools accumulate (wall clock and
the PostgreSQL backend's CPU from /proc), in buckets, the line through them and the figure at the
1,000th school; what on public.portal_user grows with the schools (issue 15). Run
`bench/provisioning.py`; see its docstring.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

GOAL_SCHOOLS = 1000
GOAL_PER_SCHOOL_AT_GOAL = 0.15  # s per school at the 1,000th school, and flat after it
BUCKET = 100  # schools per bucket of the per-school figures


def say(message: str = "") -> None:
    print(message, flush=True)


def backend_cpu_reader():
    """A function returning the CPU seconds used so far by this connection's server process, or
    None when the server does not run on this machine (or its /proc entry cannot be read)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")
    path = Path(f"/proc/{pid}/stat")

    def read() -> float:
        fields = path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    try:
        if "postgres" not in Path(f"/proc/{pid}/cmdline").read_text():
            return None
        read()
    except (OSError, ValueError, IndexError):
        return None
    return read


def fitted_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x; returns (a, b)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def user_fk_triggers() -> int:
    """How many triggers public.portal_user carries (two per foreign key that references it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.portal_user'::regclass")
        return cursor.fetchone()[0]


def first_touch_ms(table: str, repeats: int = 5) -> float:
    """Median time for a fresh connection's first query on `table` (its relation cache entry is
    built then, triggers included), after a first query on another table warmed the rest."""
    from django.db import connections

    timings = []
    for _ in range(repeats):
        connections.close_all()
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM public.portal_division LIMIT 0")
            start = time.perf_counter()
            cursor.execute(f"SELECT 1 FROM public.{table} LIMIT 0")  # noqa: S608 - our own table name
            timings.append(time.perf_counter() - start)
    connections.close_all()
    return statistics.median(timings) * 1000


def without_user_fks() -> None:
    """--what-if-no-user-fks: the clone script, less its foreign keys to public.portal_user."""
    import portal.clone

    original = portal.clone.template_script

    def stripped(template, state):
        script = original(template, state)
        if script is None:
            return None
        blocks = script.split("\n\n")
        return "\n\n".join(b for b in blocks if "REFERENCES public.portal_user" not in b)

    portal.clone.template_script = stripped


def clone_buckets(each: list[float], cpu_each: list[float]) -> list[dict]:
    """Per bucket of BUCKET schools (fewer when N is small): mean and median wall-clock s/school,
    mean server CPU s/school."""
    n = len(each)
    size = BUCKET if n >= 2 * BUCKET else max(1, n // 5)
    buckets = []
    for first in range(0, n, size):
        # School 1 also parses the CSV and checks the template: left out of its bucket's figures.
        skip = 1 if first == 0 and size > 1 else 0
        wall = each[first + skip : first + size]
        cpu = cpu_each[first + skip : first + size] if cpu_each else []
        buckets.append(
            {
                "first": first + 1,
                "last": min(n, first + size),
                "mean": statistics.fmean(wall),
                "median": statistics.median(wall),
                "cpu": statistics.fmean(cpu) if cpu else None,
            }
        )
    return buckets


def at_goal(buckets: list[dict], key: str) -> tuple[float, float, str]:
    """(s/school at the GOAL_SCHOOLS-th school, slope in s/school per 1,000 more schools, how).

    Measured as the bucket holding that school when the run reached it; else read off a straight
    line through the buckets. The slope is that line's, through all buckets.
    """
    points = [b for b in buckets if b[key] is not None]
    xs = [(b["first"] + b["last"]) / 2 for b in points]
    ys = [b[key] for b in points]
    a, b = fitted_line(xs, ys) if len(xs) > 1 else (ys[0], 0.0)
    for bucket in points:
        if bucket["first"] <= GOAL_SCHOOLS <= bucket["last"]:
            return bucket[key], b * 1000, f"measured, schools {bucket['first']}-{bucket['last']}"
    return a + b * GOAL_SCHOOLS, b * 1000, f"read off the line through {len(xs)} buckets"


def report_buckets(results) -> None:
    """The buckets of a run (bench.provisioning.Results), the line and the figure at the goal."""
    buckets = results.buckets
    has_cpu = buckets[0]["cpu"] is not None
    say("Clone, per school as schools accumulate (s/school)")
    say()
    header = "| schools | mean | median |" + (" server CPU |" if has_cpu else "")
    say(header)
    say("|---:|---:|---:|" + ("---:|" if has_cpu else ""))
    for b in buckets:
        cpu = f" {b['cpu']:.4f} |" if has_cpu else ""
        say(f"| {b['first']}-{b['last']} | {b['mean']:.4f} | {b['median']:.4f} |{cpu}")
    say()
    for key, label in (("median", "wall clock (median)"), ("cpu", "server CPU (mean)")):
        if key == "cpu" and not has_cpu:
            continue
        if buckets[-1]["last"] < 2 * BUCKET:
            say(f"- {label}: too few schools to read a line to school {GOAL_SCHOOLS:,} (run --n 300 or more)")
            continue
        value, slope, how = at_goal(buckets, key)
        first = buckets[0][key]
        say(
            f"- {label}: {value:.3f} s/school at school {GOAL_SCHOOLS:,} ({how}) "
            f"÷ goal {GOAL_PER_SCHOOL_AT_GOAL:.2f} s = {value / GOAL_PER_SCHOOL_AT_GOAL:.2f}; slope "
            f"{slope:+.3f} s/school per 1,000 more schools ({slope / first * 100 if first else 0:+.0f} % "
            f"of the first bucket's {first:.3f} s; flat would be about 0)"
        )
    say(
        f"- public.portal_user carries {results.user_triggers:,} triggers after the run (two per foreign"
        " key to it, from public tables; before 9bff86f also 18 per school); adding a key re-reads them all"
    )
    for table, ms in results.first_touch.items():
        say(f"- a new connection's first query on {table}: {ms:.1f} ms (median of 5)")
    say()
