"""Server time of the grade book: the page of a 45-student class and a cell save.

    make bench-gradebook                 # this, then bench/evaluate.py (rules throughput)
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/gradebook.py [--requests N]

Runs in a throwaway database (bench/support.py). A school is provisioned and seeded with the
demo data (a 45-student class with a full year of scores); the requests go through Django's
whole stack in-process (middleware, sessions, the school route, templates), without a network,
so the figure is server time. Printed: median and p95 over N requests, the statements each
request issued, and the ratio of each to its budget and to a peer page measured in the same run
(the school's home page).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import percentile, summary_ms, throwaway_django

# Budgets: what a teacher on a school connection should not notice (server side only).
PAGE_BUDGET_P95 = 0.200
SAVE_BUDGET_P95 = 0.050


def timed(client, method: str, url: str, n: int, data_for=None) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        response = client.get(url) if method == "get" else client.post(url, data_for(i))
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return times


def statements(client, method: str, url: str, data=None) -> tuple[int, int]:
    """(all statements, without django-tenants' SET search_path) of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        getattr(client, method)(url, data) if data else getattr(client, method)(url)
    real = [q for q in queries if not q["sql"].startswith("SET search_path")]
    return len(queries), len(real)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement (default 300)")
    args = parser.parse_args()
    n = args.requests

    with throwaway_django() as server_version:
        from django.db import connection
        from django.test import Client

        from portal.choices import Role, SchoolLevel
        from portal.models import RoleAssignment, User
        from portal.provisioning import SchoolSpec, school_provision
        from schools.models import Enrolment, SchoolClass
        from transcripts.demo import school_demo_seed

        teacher = User.objects.create_user(
            username="thcs.gvbm", password="bench-only", full_name="Giáo Viên Toán"
        )
        homeroom = User.objects.create_user(
            username="thcs.gvcn", password="bench-only", full_name="Giáo Viên Chủ Nhiệm"
        )
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code="bench-thcs", name="Trường THCS Bench", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
        for user, role in ((teacher, Role.SUBJECT_TEACHER), (homeroom, Role.HOMEROOM_TEACHER)):
            RoleAssignment.objects.create(user=user, role=role, school=school)
        with school:
            school_demo_seed(school, {"thcs.gvbm": teacher, "thcs.gvcn": homeroom})
            big = max(
                SchoolClass.objects.all(), key=lambda c: Enrolment.objects.filter(school_class=c).count()
            )
            students = Enrolment.objects.filter(school_class=big).count()
            enrolments = list(Enrolment.objects.filter(school_class=big).values_list("pk", flat=True))
        connection.set_schema_to_public()

        client = Client()
        client.force_login(teacher)
        base = f"/truong/{school.code}"
        book = f"{base}/so-diem/{big.pk}/toan/?hk=1"
        save = f"{base}/so-diem/{big.pk}/toan/o/"
        home = f"{base}/"
        for url in (home, book):
            client.get(url)  # warm the route cache, templates and connection

        def cell(i: int) -> dict:
            return {
                "enrolment": enrolments[i % len(enrolments)],
                "field": "regular_1",
                "term": "1",
                "value": f"{5 + (i % 50) / 10:.1f}".replace(".", ","),
            }

        home_times = timed(client, "get", home, n)
        book_times = timed(client, "get", book, n)
        save_times = timed(client, "post", save, n, cell)
        book_sql = statements(client, "get", book)
        save_sql = statements(client, "post", save, cell(n + 1))
        home_sql = statements(client, "get", home)

        book_p95, save_p95 = percentile(book_times, 0.95), percentile(save_times, 0.95)
        print(
            f"Grade book benchmark · {platform.node()} · {os.cpu_count()} cores · PostgreSQL {server_version}"
        )
        line = "  {:<26}{}   statements {:3d} ({} without SET)"
        book_median = sorted(book_times)[n // 2] / sorted(home_times)[n // 2]
        print(f"class of {students} students, Toán (4 regular scores, mid, end), {n} requests each\n")
        print(line.format("school home page (peer)", summary_ms(home_times), *home_sql))
        print(line.format("grade book page", summary_ms(book_times), *book_sql))
        print(line.format("cell save", summary_ms(save_times), *save_sql))
        print()
        print(f"  grade book ÷ home page (median)  {book_median:5.2f}×")
        print(
            f"  grade book p95 ÷ budget {PAGE_BUDGET_P95 * 1000:.0f} ms   {book_p95 / PAGE_BUDGET_P95:5.2f}"
        )
        print(
            f"  cell save  p95 ÷ budget {SAVE_BUDGET_P95 * 1000:.0f} ms    {save_p95 / SAVE_BUDGET_P95:5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
