"""The data set of bench/dashboard.py: 1,000 schools (School rows without schemas: the dashboards
read only public tables), 25 divisions, progress rows summing to 2,000,000 students, 40 weeks
per school and year, the users who look; kept in the bench's own database, made again when its
description changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import bench_django as support_bench_django

SEED = 20261206
N_SCHOOLS_DIRECT = 100
STUDENTS = 2_000_000
WEEKS = 40
CODE_PREFIX = "bd-"  # every division and school the bench makes
DEPT_OFFICER = "bench.so.chuyenvien"
DIVISION_OFFICER = "bench.phong.chuyenvien"
OPERATOR = "bench.so.quantri"
PASSWORD = "bench-only"  # noqa: S105 - a throwaway bench account
REJECTION_CODES = {  # the Ministry's codes (registry.choices.RejectionCode) and how often they come
    "schema": 0.10,
    "signature": 0.15,
    "personal_id_missing": 0.45,
    "unknown_school": 0.02,
    "mismatch": 0.23,
    "unknown_version": 0.05,
}
# (kind, how many, schools each: low, high)
DIVISION_PLAN = (("district_office", 9, 40, 90), ("commune", 12, 10, 40), ("cluster", 4, 5, 20))
DATASET_VERSION = 1


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def school_year_current(today: dt.date) -> tuple[str, str]:
    """(current, previous) school year codes: a school year runs from September to August."""
    start = today.year if today.month >= 9 else today.year - 1
    return f"{start}-{start + 1}", f"{start - 1}-{start}"


def dataset_description(today: dt.date) -> dict:
    current, previous = school_year_current(today)
    return {
        "version": DATASET_VERSION,
        "seed": SEED,
        "students": STUDENTS,
        "direct": N_SCHOOLS_DIRECT,
        "divisions": [list(p) for p in DIVISION_PLAN],
        "weeks": WEEKS,
        "years": [current, previous],
    }


# --- the database --------------------------------------------------------------------------------


def dataset_stored(url: str) -> dict | None:
    """The description of the data set the bench database holds (None: none, or unfinished)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass(%s)", [f"public.{MARKER_TABLE}"]).fetchone()
        if found is None or found[0] is None:
            return None
        row = conn.execute(f"SELECT description FROM public.{MARKER_TABLE}").fetchone()  # noqa: S608
    return row[0] if row else None


@contextlib.contextmanager
def bench_django(name: str, *, fresh: bool, description: dict) -> Iterator[str]:
    """Django on the bench's own database (bench.support.bench_django), only public migrated: the
    dashboards read no school schema, and the bench's schools have none. A database holding
    another data set (an older description, or none: an interrupted run) is made again."""
    with support_bench_django(
        name,
        fresh=fresh,
        stale=lambda url: dataset_stored(url) != description,
        shared_only=True,
        say=progress,
    ) as version:
        yield version


MARKER_TABLE = "bench_dashboard_dataset"


# --- the data set --------------------------------------------------------------------------------

PLACES = [
    "Bát Xát", "Mường Khương", "Si Ma Cai", "Bắc Hà", "Bảo Thắng", "Bảo Yên", "Sa Pa", "Văn Bàn",
    "Cốc San", "Hợp Thành", "Tả Phời", "Gia Phú", "Xuân Quang", "Phong Niên", "Phố Lu", "Thái Niên",
    "Sơn Hải", "Bản Vược", "Trịnh Tường", "Y Tý", "A Mú Sung", "Lùng Phình", "Cán Cấu", "Bản Phiệt",
    "Nậm Chảy", "Pha Long", "Lùng Vai", "Võ Lao", "Khánh Yên", "Nghĩa Đô",
]  # fmt: skip


def place(rng: random.Random) -> str:
    return rng.choice(PLACES)


def split(total: int, weights: list[float]) -> list[int]:
    """`total` split by `weights` into integers that add up to it (largest remainders)."""
    weight_sum = sum(weights) or 1.0
    raw = [total * w / weight_sum for w in weights]
    parts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def school_sizes(rng: random.Random, n: int, total: int) -> list[int]:
    """n school sizes (300-6,000 students, skewed: many small, some very large) adding up to total."""
    raw = [min(6000.0, max(300.0, rng.lognormvariate(7.45, 0.55))) for _ in range(n)]
    sizes = [max(300, min(6000, round(x * total / sum(raw)))) for x in raw]
    # Rounding and clamping leave a small difference: spread it over the schools with room.
    diff = total - sum(sizes)
    step = 1 if diff > 0 else -1
    i = 0
    while diff:
        j = i % n
        if 300 < sizes[j] + step < 6000:
            sizes[j] += step
            diff -= step
        i += 1
    return sizes


def counters_for(rng: random.Random, students: int, season: float) -> tuple[dict[str, int], dict[str, int]]:
    """A school's counters and rejections by reason, `season` (0-1) being how far its year went."""
    classes = max(1, round(students / rng.uniform(30, 42)))
    books = min(classes, round(classes * min(1.0, season * rng.uniform(1.1, 1.5))))
    approved = min(books, round(books * min(1.0, season * rng.uniform(0.8, 1.2))))
    records = round(students * approved / classes)
    # How far the records went: later states get more of them the further the season is.
    s = season
    weights = [
        max(0.0, 1 - 1.6 * s) + 0.02,  # draft
        max(0.0, 0.6 - abs(s - 0.35)) * 0.5,  # confirmed
        max(0.0, 0.6 - abs(s - 0.5)) * 0.5,  # signed by the homeroom teacher
        max(0.0, 0.6 - abs(s - 0.6)) * 0.6,  # signed by the principal
        max(0.0, 0.6 - abs(s - 0.7)) * 0.5,  # issued
        max(0.0, 0.5 - abs(s - 0.8)) * 0.6,  # queued
        max(0.0, s - 0.45) * 3.0,  # acknowledged
    ]
    weights = [w * rng.uniform(0.7, 1.3) for w in weights]
    draft, confirmed, homeroom, principal, issued, queued, acknowledged = split(records, weights)
    rejected = min(acknowledged, round(acknowledged * rng.uniform(0.0, 0.02)))
    acknowledged -= rejected
    reasons = list(REJECTION_CODES)
    by_reason = split(rejected, [REJECTION_CODES[r] * rng.uniform(0.3, 1.7) for r in reasons])
    counters = {
        "students": students,
        "students_without_personal_id": round(students * rng.uniform(0.0, 0.04) * (1.2 - s)),
        "students_waiting_summer": round(students * rng.uniform(0.0, 0.03) * min(1.0, s * 1.5)),
        "classes": classes,
        "classes_books_complete": books,
        "classes_approved": approved,
        "records_draft": draft,
        "records_confirmed": confirmed,
        "records_signed_homeroom": homeroom,
        "records_signed_principal": principal,
        "records_issued": issued,
        "records_queued": queued,
        "records_acknowledged": acknowledged,
        "records_rejected": rejected,
    }
    return counters, {reason: n for reason, n in zip(reasons, by_reason, strict=True) if n}


def season_weeks(school_year: str) -> list[dt.date]:
    """The bench's 40 weeks of a school year: the Mondays up to the last one of August."""
    end_year = int(school_year[5:])
    last = dt.date(end_year, 8, 31)
    last -= dt.timedelta(days=last.weekday())
    return [last - dt.timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]


def week_weights(rng: random.Random) -> list[float]:
    """How a school's year moves over the 40 weeks: little in term I, most in May-August."""
    out = []
    for i in range(WEEKS):
        x = i / (WEEKS - 1)
        base = 0.05 + (x**3) * 4 + (1.5 if 0.6 < x < 0.75 else 0.0)  # the end of term II, then summer
        out.append(base * rng.uniform(0.5, 1.5))
    return out


def dataset_make(description: dict) -> None:
    from django.db import transaction

    from portal.choices import DivisionKind, Role, SchoolLevel
    from portal.db import connection
    from portal.models import Department, Division, RoleAssignment, School
    from portal.models_progress import ProgressWeek, SchoolProgress
    from portal.services import department_admin_bootstrap, role_assignment_grant, user_create

    rng = random.Random(SEED)
    current, previous = description["years"]
    started = time.perf_counter()
    with transaction.atomic():
        connection.set_schema_to_public()
        if not Department.objects.exists():
            Department.objects.create(code="10", name="Sở Giáo dục và Đào tạo Lào Cai", place_name="Lào Cai")
        kind_names = {
            DivisionKind.DISTRICT_OFFICE: "Phòng Giáo dục và Đào tạo huyện",
            DivisionKind.COMMUNE: "UBND xã",
            DivisionKind.CLUSTER: "Cụm trường",
        }
        divisions: list[tuple[Division, int]] = []
        for kind, count, low, high in DIVISION_PLAN:
            for i in range(count):
                division = Division(
                    code=f"{CODE_PREFIX}{kind[:3]}-{i + 1:02d}",
                    name=f"{kind_names[DivisionKind(kind)]} {place(rng)} ({i + 1})",
                    kind=kind,
                )
                divisions.append((division, rng.randint(low, high)))
        Division.objects.bulk_create([d for d, _ in divisions])
        # 900 schools under the divisions: their drawn sizes scaled to add up to 900.
        under = split(1000 - N_SCHOOLS_DIRECT, [float(n) for _, n in divisions])
        schools: list[School] = []
        number = 0

        def school(name: str, levels: list[str], division: Division | None) -> School:
            nonlocal number
            number += 1
            code = f"{CODE_PREFIX}{number:04d}"
            return School(
                code=code,
                schema_name=School.schema_name_for(code),
                name=f"{name} {place(rng)} ({number})",
                levels=levels,
                division=division,
                address=f"{place(rng)}, Lào Cai",
            )

        for (division, _), count in zip(divisions, under, strict=True):
            for _ in range(count):
                roll = rng.random()
                if roll < 0.5:
                    schools.append(school("Trường Tiểu học", [SchoolLevel.PRIMARY], division))
                elif roll < 0.85:
                    schools.append(school("Trường THCS", [SchoolLevel.LOWER_SECONDARY], division))
                else:
                    schools.append(
                        school(
                            "Trường PTDTBT TH và THCS",
                            [SchoolLevel.PRIMARY, SchoolLevel.LOWER_SECONDARY],
                            division,
                        )
                    )
        for _ in range(N_SCHOOLS_DIRECT):
            if rng.random() < 0.8:
                schools.append(school("Trường THPT", [SchoolLevel.UPPER_SECONDARY], None))
            else:
                schools.append(school("Trung tâm GDNN-GDTX", [SchoolLevel.CONTINUING], None))
        # No schema is provisioned: School.auto_create_schema is False, and bulk_create never calls save().
        School.objects.bulk_create(schools, batch_size=1000)
        progress(
            f"  {len(divisions)} divisions, {len(schools)} schools ({time.perf_counter() - started:.1f} s)"
        )

        rows: list[SchoolProgress] = []
        weeks: list[ProgressWeek] = []
        sizes = school_sizes(rng, len(schools), STUDENTS)
        for year, year_sizes, season_low in (
            (current, sizes, 0.0),
            (previous, [round(n * rng.uniform(0.93, 1.0)) for n in sizes], 0.85),
        ):
            days = season_weeks(year)
            for sch, students in zip(schools, year_sizes, strict=True):
                season = season_low + (1 - season_low) * rng.betavariate(2.2, 1.6)
                counters, rejections = counters_for(rng, students, season)
                row = SchoolProgress(school=sch, school_year=year, rejections=rejections, **counters)
                rows.append(row)
                weights = week_weights(rng)
                moved = [
                    split(row.classes_approved, weights),
                    split(row.records_signed, weights),
                    split(row.records_acknowledged, weights),
                ]
                for i, day in enumerate(days):
                    weeks.append(
                        ProgressWeek(
                            school=sch,
                            school_year=year,
                            week=day,
                            classes_approved=moved[0][i],
                            records_signed=moved[1][i],
                            records_acknowledged=moved[2][i],
                        )
                    )
        SchoolProgress.objects.bulk_create(rows, batch_size=2000)
        ProgressWeek.objects.bulk_create(weeks, batch_size=5000)
        progress(f"  {len(rows)} progress rows, {len(weeks)} weeks ({time.perf_counter() - started:.1f} s)")

        # The people: made the way the demo makes them (portal/demo.py).
        operator = user_create(actor=None, username=OPERATOR, full_name="Bench Quản Trị", password=PASSWORD)
        if not RoleAssignment.objects.current().filter(role=Role.DEPARTMENT_ADMIN).exists():
            department_admin_bootstrap(user=operator)
        else:  # a department administrator from elsewhere: grant ours as a plain row
            RoleAssignment.objects.create(user=operator, role=Role.DEPARTMENT_ADMIN)
        officer = user_create(
            actor=operator, username=DEPT_OFFICER, full_name="Bench Chuyên Viên Sở", password=PASSWORD
        )
        role_assignment_grant(actor=operator, user=officer, role=Role.DEPARTMENT_OFFICER, data_access=True)
        biggest = biggest_division()
        division_officer = user_create(
            actor=operator, username=DIVISION_OFFICER, full_name="Bench Chuyên Viên Phòng", password=PASSWORD
        )
        role_assignment_grant(
            actor=operator, user=division_officer, role=Role.DIVISION_OFFICER, division=biggest
        )
        from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

        from portal.permissions import requires_two_factor

        for user in (operator, officer, division_officer):
            if requires_two_factor(user):
                TOTP.activate(user, generate_totp_secret())
        with connection.cursor() as cursor:  # in the same transaction: an interrupted run leaves none
            cursor.execute(f"CREATE TABLE public.{MARKER_TABLE} (description jsonb NOT NULL)")
            cursor.execute(
                f"INSERT INTO public.{MARKER_TABLE} (description) VALUES (%s::jsonb)",  # noqa: S608
                [json.dumps(description)],
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    progress(f"  data set made in {time.perf_counter() - started:.1f} s")


def biggest_division():
    from django.db.models import Count

    from portal.models import Division

    return (
        Division.objects.filter(code__startswith=CODE_PREFIX)
        .annotate(n=Count("schools"))
        .order_by("-n", "code")
        .first()
    )


def dataset_summary(current: str) -> dict:
    from django.db.models import Count, Sum

    from portal.models import Division, School
    from portal.models_progress import ProgressWeek, SchoolProgress

    biggest = biggest_division()
    return {
        "schools": School.objects.filter(code__startswith=CODE_PREFIX, active=True).count(),
        "direct": School.objects.filter(code__startswith=CODE_PREFIX, division__isnull=True).count(),
        "divisions": Division.objects.filter(code__startswith=CODE_PREFIX).count(),
        "kinds": dict(
            Division.objects.filter(code__startswith=CODE_PREFIX)
            .values_list("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        ),
        "students": SchoolProgress.objects.filter(
            school_year=current, school__code__startswith=CODE_PREFIX
        ).aggregate(n=Sum("students"))["n"],
        "progress_rows": SchoolProgress.objects.count(),
        "weeks": ProgressWeek.objects.count(),
        "biggest": biggest,
        "biggest_schools": School.objects.filter(division=biggest).count(),
        "largest": School.objects.get(
            pk=SchoolProgress.objects.filter(school_year=current, school__code__startswith=CODE_PREFIX)
            .order_by("-students")
            .values_list("school_id", flat=True)[0]
        ),
    }
