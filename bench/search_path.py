"""`SET search_path` per request: the grade book page and a cell save, with django-tenants' SET
before every statement and with portal.postgresql_backend's SET only when it changes, measured
in the same process, turn and turn about, so that both see the same machine load.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/search_path.py [--requests N] [--rounds R]

Runs in a throwaway database (bench/support.py): a school provisioned and seeded with the demo
data (its biggest class, Toán, term I), a subject teacher logged in through the test client (the
whole Django stack in-process, no network: server time).

Each request is measured in two states of the pooled connection:
- "from another schema": before each request the connection ran a statement in public, as a
  worker's connection does after a public page or another school's: the school's path must be set;
- "same school again": the previous request on this connection was for the same school.

Printed per mode and state: statements a request issued (all, of which SET search_path), the
time spent inside those SETs (a wrapper around each statement, perf_counter), and the request's
median and p95. The rounds alternate the modes, R rounds of N requests each.

The old mode is django-tenants' own `_handle_search_path` put back on the connection's class
(TENANT_LIMIT_SET_CALLS off, the project's setting): exactly what ran before. On a revision
without portal.postgresql_backend (the base commit of issue 15) only that mode runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import percentile, throwaway_django

EVERY = "SET before every statement (django-tenants)"
CHANGED = "SET when it changes (portal.postgresql_backend)"
PASSWORD = "bench-only-password-2026"  # noqa: S105 - a throwaway database's teacher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="requests per round and measure (100)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, the modes alternating (4)")
    args = parser.parse_args()

    with throwaway_django() as server_version:
        from django.db import connection, connections
        from django.test import Client
        from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantsWrapper

        from portal.choices import Role, SchoolLevel
        from portal.models import RoleAssignment, User
        from portal.provisioning import SchoolSpec, school_provision
        from schools.models import Enrolment, SchoolClass
        from transcripts.demo import school_demo_seed

        wrapper = type(connections["default"])
        modes = {EVERY: TenantsWrapper._handle_search_path}
        if wrapper is not TenantsWrapper:  # portal.postgresql_backend
            modes[CHANGED] = wrapper._handle_search_path

        def use(mode: str) -> None:
            wrapper._handle_search_path = modes[mode]
            # What the old mode set was not seen by the new one's bookkeeping: start from unknown.
            if hasattr(connection, "search_path_forget"):
                connection.search_path_forget()

        teacher = User.objects.create_user(username="thcs.gvbm", password=PASSWORD, full_name="Giáo Viên")
        homeroom = User.objects.create_user(username="thcs.gvcn", password=PASSWORD, full_name="Chủ Nhiệm")
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(code="bench-sp", name="Trường THCS Bench", levels=(SchoolLevel.LOWER_SECONDARY,)),
            division=None,
        )
        for user, role in ((teacher, Role.SUBJECT_TEACHER), (homeroom, Role.HOMEROOM_TEACHER)):
            RoleAssignment.objects.create(user=user, role=role, school=school)
        with school:
            school_demo_seed(school, {"thcs.gvbm": teacher, "thcs.gvcn": homeroom})
            big = max(
                SchoolClass.objects.all(), key=lambda c: Enrolment.objects.filter(school_class=c).count()
            )
            enrolments = list(Enrolment.objects.filter(school_class=big).values_list("pk", flat=True))
        connection.set_schema_to_public()

        client = Client()
        client.force_login(teacher)
        book = f"/truong/{school.code}/so-diem/{big.pk}/toan/?hk=1"
        save = f"/truong/{school.code}/so-diem/{big.pk}/toan/o/"
        counter = iter(range(10**9))

        def page() -> int:
            return client.get(book).status_code

        def cell() -> int:
            i = next(counter)
            data = {
                "enrolment": enrolments[i % len(enrolments)],
                "field": "regular_1",
                "term": "1",
                "value": f"{5 + (i % 50) / 10:.1f}".replace(".", ","),
            }
            return client.post(save, data).status_code

        def from_public() -> None:
            connection.set_schema_to_public()
            User.objects.filter(pk=teacher.pk).exists()

        cases = {
            ("grade book page", "from another schema"): (page, from_public),
            ("grade book page", "same school again"): (page, lambda: None),
            ("cell save", "from another schema"): (cell, from_public),
            ("cell save", "same school again"): (cell, lambda: None),
        }
        # per (mode, case): request times, statements, SETs, seconds inside SETs
        seen: dict[tuple, dict[str, list[float]]] = {
            (mode, case): {"time": [], "all": [], "set": [], "set_time": []}
            for mode in modes
            for case in cases
        }

        def measure(mode: str, case: tuple[str, str], n: int) -> None:
            request, before = cases[case]
            stats = seen[(mode, case)]
            for _ in range(n):
                before()
                log = {"all": 0, "set": 0, "set_time": 0.0}

                def watch(execute, sql, params, many, context, log=log):
                    start = time.perf_counter()
                    try:
                        return execute(sql, params, many, context)
                    finally:
                        log["all"] += 1
                        if str(sql).startswith("SET search_path"):
                            log["set"] += 1
                            log["set_time"] += time.perf_counter() - start

                with connection.execute_wrapper(watch):
                    start = time.perf_counter()
                    status = request()
                    elapsed = time.perf_counter() - start
                assert status == 200, (case, status)
                stats["time"].append(elapsed)
                for key in ("all", "set", "set_time"):
                    stats[key].append(log[key])

        for mode in modes:  # warm: templates, the route cache, the connection
            use(mode)
            for case in cases:
                measure(mode, case, 3)
        for values in seen.values():
            for series in values.values():
                series.clear()
        for _round in range(args.rounds):
            for mode in modes:
                use(mode)
                for case in cases:
                    measure(mode, case, args.requests)

        print(f"search_path bench · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}")
        print(f"{args.rounds} rounds × {args.requests} requests per mode and case, the modes alternating\n")
        header = "  {:<17}{:<22}{:>11}{:>6}{:>14}{:>12}{:>10}"
        print(
            header.format(
                "request", "connection", "statements", "SETs", "in SETs (ms)", "median ms", "p95 ms"
            )
        )
        medians: dict[tuple, float] = {}
        for mode in modes:
            print(f"{mode}")
            for case in cases:
                stats = seen[(mode, case)]
                medians[(mode, case)] = statistics.median(stats["time"])
                print(
                    header.format(
                        *case,
                        f"{statistics.mean(stats['all']):.1f}",
                        f"{statistics.mean(stats['set']):.1f}",
                        f"{statistics.mean(stats['set_time']) * 1000:.2f}",
                        f"{medians[(mode, case)] * 1000:.2f}",
                        f"{percentile(stats['time'], 0.95) * 1000:.2f}",
                    )
                )
        if CHANGED in modes:
            print("\nmedian, SET when it changes ÷ SET before every statement")
            for case in cases:
                print(f"  {case[0]:<17}{case[1]:<22}{medians[(CHANGED, case)] / medians[(EVERY, case)]:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
