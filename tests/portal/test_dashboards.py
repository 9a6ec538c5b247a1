"""The supervisors' dashboards: the figures, the weeks, sorting, filters, the export, the queries.

The pages read portal.SchoolProgress and portal.ProgressWeek only; the rows are written here
directly as the pages' fixtures (their writes are tested with portal.progress.services).
"""

from __future__ import annotations

import datetime as dt

import pytest

from portal.models import School
from portal.models_progress import COUNTERS, ProgressWeek, SchoolProgress
from portal.progress.selectors import (
    progress_by_division,
    progress_by_school,
    progress_total,
    progress_weeks,
    progress_years,
)

YEAR = "2025-2026"
MONDAY = dt.date(2026, 5, 4)


def progress_make(school: School, school_year: str = YEAR, rejections: dict | None = None, **counters):
    return SchoolProgress.objects.create(
        school=school, school_year=school_year, rejections=rejections or {}, **counters
    )


def week_make(school: School, week: dt.date, school_year: str = YEAR, **moved):
    return ProgressWeek.objects.create(school=school, school_year=school_year, week=week, **moved)


def schools_make(count: int, division=None, prefix: str = "t-x") -> list[School]:
    """Rows only (no schema): the dashboards never open a school's schema."""
    return School.objects.bulk_create(
        School(
            schema_name=School.schema_name_for(f"{prefix}{n}"),
            code=f"{prefix}{n}",
            name=f"Trường Thêm {prefix} {n:03d}",
            levels=["primary"],
            division=division,
        )
        for n in range(count)
    )


@pytest.fixture
def figures(school, other_school, direct_school):
    """A year of progress in the three test schools, and an older year in one."""
    progress_make(
        school,
        students=40,
        students_without_personal_id=2,
        students_waiting_summer=1,
        classes=2,
        classes_books_complete=2,
        classes_approved=1,
        records_signed_principal=5,
        records_issued=3,
        records_queued=4,
        records_acknowledged=20,
        records_rejected=3,
        rejections={"schema": 2, "signature": 1},
    )
    progress_make(other_school, students=10, classes=1, records_acknowledged=10)
    progress_make(
        direct_school,
        students=50,
        classes=2,
        classes_approved=2,
        records_acknowledged=5,
        records_rejected=1,
        rejections={"brand_new_code": 1},
    )
    progress_make(school, school_year="2024-2025", students=38, records_acknowledged=38)
    week_make(school, MONDAY, classes_approved=1, records_signed=12)
    week_make(school, MONDAY + dt.timedelta(days=7), records_signed=20, records_acknowledged=20)
    week_make(direct_school, MONDAY, classes_approved=2, records_signed=6, records_acknowledged=5)


# --- Selectors -------------------------------------------------------------------------------


def test_the_years_are_listed_newest_first(figures):
    assert progress_years()[:2] == ["2025-2026", "2024-2025"]


def test_divisions_sum_their_schools_and_the_direct_schools_have_their_row(
    figures, division_a, division_b, direct_school
):
    rows = {row.key: row for row in progress_by_division(school_year=YEAR)}
    a = rows["t-div-a"]
    assert (a.kind, a.schools, a.students, a.records_acknowledged) == ("division", 1, 40, 20)
    assert a.records_signed == 5 + 3 + 4 + 20 + 3
    assert a.completion == 0.5
    assert a.rejections == {"schema": 2, "signature": 1}
    assert rows["t-div-b"].completion == 1.0
    direct = rows["direct"]
    assert (direct.kind, direct.schools, direct.students, direct.rejections) == (
        "direct",
        1,
        50,
        {"brand_new_code": 1},
    )
    total = progress_total(rows.values())
    assert total.students == 100 and total.records_acknowledged == 35
    assert total.rejections == {"schema": 2, "signature": 1, "brand_new_code": 1}


def test_inactive_schools_are_not_counted(figures, school):
    School.objects.filter(pk=school.pk).update(active=False)
    rows = {row.key: row for row in progress_by_division(school_year=YEAR)}
    assert (rows["t-div-a"].schools, rows["t-div-a"].students, rows["t-div-a"].rejections) == (0, 0, {})
    assert progress_by_school(school_year=YEAR, schools=School.objects.all())[0].key != school.code
    assert all(
        p.classes_approved == 2 for p in progress_weeks(school_year=YEAR, schools=School.objects.all())
    )


def test_a_school_without_a_row_shows_zeros(figures, division_a):
    extra = schools_make(1, division_a)[0]
    rows = {row.key: row for row in progress_by_school(school_year=YEAR, schools=School.objects.all())}
    assert rows[extra.code].counters == dict.fromkeys(COUNTERS, 0)
    assert rows[extra.code].completion is None
    assert {row.key: row.schools for row in progress_by_division(school_year=YEAR)}["t-div-a"] == 2


def test_the_weeks_are_running_totals(figures):
    points = progress_weeks(school_year=YEAR, schools=School.objects.all())
    assert [(p.week, p.classes_approved, p.records_signed, p.records_acknowledged) for p in points] == [
        (MONDAY, 3, 18, 5),
        (MONDAY + dt.timedelta(days=7), 3, 38, 25),
    ]


@pytest.mark.parametrize("count", [3, 30])
def test_the_selectors_cost_the_same_queries_for_3_or_30_schools(
    count, division_a, django_assert_max_num_queries, django_assert_num_queries
):
    for school in schools_make(count, division_a, prefix=f"t-q{count}-"):
        progress_make(school, students=10, records_acknowledged=3, rejections={"schema": 1})
        week_make(school, MONDAY, records_signed=3)
    # Counted exactly, so that 3 and 30 schools must agree (and each search_path SET counts too).
    with django_assert_num_queries(QUERIES_BY_DIVISION):
        progress_by_division(school_year=YEAR)
    with django_assert_num_queries(QUERIES_BY_SCHOOL):
        progress_by_school(school_year=YEAR, schools=School.objects.filter(division=division_a))
    with django_assert_num_queries(QUERIES_WEEKS):
        progress_weeks(school_year=YEAR, schools=School.objects.all())


# Queries, twice (django-tenants sets search_path before each: docs/architecture.md).
QUERIES_BY_DIVISION = 2 * 4
QUERIES_BY_SCHOOL = 2 * 2
QUERIES_WEEKS = 2 * 1
