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
    """The school's row for the year, exactly these figures (the session's test school already has
    one, written by the apps when its book was built: it is overwritten, within the test)."""
    row, _created = SchoolProgress.objects.update_or_create(
        school=school,
        school_year=school_year,
        defaults={**dict.fromkeys(COUNTERS, 0), **counters, "rejections": rejections or {}},
    )
    return row


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
    """A year of progress in the three test schools, and an older year in one (whatever weeks the
    session's province already moved are cleared: these are the weeks)."""
    ProgressWeek.objects.filter(school_year=YEAR).delete()
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
    # Counted exactly, so that 3 and 30 schools must agree. The connection is on public already,
    # so no SET search_path precedes them (portal.postgresql_backend sets it only when it changes).
    with django_assert_num_queries(QUERIES_BY_DIVISION):
        progress_by_division(school_year=YEAR)
    with django_assert_num_queries(QUERIES_BY_SCHOOL):
        progress_by_school(school_year=YEAR, schools=School.objects.filter(division=division_a))
    with django_assert_num_queries(QUERIES_WEEKS):
        progress_weeks(school_year=YEAR, schools=School.objects.all())


QUERIES_BY_DIVISION = 4
QUERIES_BY_SCHOOL = 2
QUERIES_WEEKS = 1


# --- The department's page -------------------------------------------------------------------


def test_the_department_page_shows_each_division_and_the_direct_schools(
    client_as, department_officer, figures
):
    response = client_as(department_officer).get("/so/", HTTP_ACCEPT_LANGUAGE="vi")
    assert response.status_code == 200
    rows = {row.key: row for row in response.context["rows"]}
    assert rows == {row.key: row for row in progress_by_division(school_year=YEAR)}
    page = response.content.decode()
    assert 'href="/don-vi/t-div-a/?year=2025-2026"' in page
    assert 'href="/so/truc-thuoc/?year=2025-2026"' in page
    assert "Trực thuộc Sở" in page
    # Totals for the province: 35 of 100 students acknowledged.
    assert response.context["total"].students == 100
    assert response.context["completion"] == "35 %"
    # The weeks chart and its table, the rejections with their labels (an unknown code shown as is).
    assert "<svg" in page and "<polyline" in page and "04/05/2026" in page
    assert "brand_new_code" in page
    assert "Chữ ký không hợp lệ" in page or "signature" in page


def test_the_department_page_without_any_figures_lists_the_divisions_at_zero(client_as, department_officer):
    ProgressWeek.objects.all().delete()
    SchoolProgress.objects.all().delete()
    response = client_as(department_officer).get("/so/", HTTP_ACCEPT_LANGUAGE="vi")
    assert response.status_code == 200
    assert {row.key: row.students for row in response.context["rows"]} == {
        "t-div-a": 0,
        "t-div-b": 0,
        "direct": 0,
    }
    assert "Chưa có trường nào có số liệu tiến độ." in response.content.decode()


def test_the_division_page_shows_its_schools_linking_to_their_supervision_pages(
    client_as, division_officer, figures, school
):
    response = client_as(division_officer).get("/don-vi/t-div-a/")
    assert response.status_code == 200
    assert [row.key for row in response.context["rows"]] == [school.code]
    assert (
        response.context["rows"][0]
        == progress_by_school(school_year=YEAR, schools=School.objects.filter(pk=school.pk))[0]
    )
    assert f'href="/giam-sat/truong/{school.code}/?year=2025-2026"' in response.content.decode()


def test_the_direct_schools_page_lists_the_schools_under_the_department(
    client_as, department_officer, figures, direct_school
):
    response = client_as(department_officer).get("/so/truc-thuoc/")
    assert [row.key for row in response.context["rows"]] == [direct_school.code]


def test_the_school_page_shows_the_schools_figures(client_as, division_officer, figures, school):
    response = client_as(division_officer).get(f"/giam-sat/truong/{school.code}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-figure="students">40<' in page
    assert 'data-figure="records_signed">35<' in page
    assert response.context["completion"] == "50 %"
    assert [code for code, _label, _n in response.context["rejections"]] == ["schema", "signature"]


# --- Year, sort, filters, export --------------------------------------------------------------


def test_the_year_selector_defaults_to_the_newest_and_shows_an_older_year(
    client_as, division_officer, figures
):
    client = client_as(division_officer)
    assert client.get("/don-vi/t-div-a/").context["query"].year == "2025-2026"
    older = client.get("/don-vi/t-div-a/?year=2024-2025")
    assert older.context["query"].year == "2024-2025"
    assert older.context["rows"][0].students == 38


@pytest.mark.parametrize("year", ["1999-2000", "x", "2025-2026'--", "２０２５-２０２６"])
def test_an_unknown_year_falls_back_to_the_newest_with_a_notice(client_as, department_officer, figures, year):
    response = client_as(department_officer).get("/so/", {"year": year}, HTTP_ACCEPT_LANGUAGE="vi")
    assert response.status_code == 200
    assert response.context["query"].year == "2025-2026"
    assert response.context["query"].notices


@pytest.mark.parametrize(
    "column",
    [
        "name",
        "schools",
        "students",
        "completion",
        "classes_approved",
        "records_signed",
        "records_queued",
        "records_acknowledged",
        "records_rejected",
        "students_without_personal_id",
        "students_waiting_summer",
    ],
)
def test_every_column_of_the_department_table_sorts_both_ways(client_as, department_officer, figures, column):
    from portal.progress.tables import DIVISION_COLUMNS

    client = client_as(department_officer)
    value = next(c for c in DIVISION_COLUMNS if c.key == column).value
    for descending in (False, True):
        response = client.get("/so/", {"sort": ("-" if descending else "") + column})
        rows = response.context["rows"]
        values = [value(row) for row in rows if value(row) is not None]
        if column == "name":
            values = [v.casefold() for v in values]
        assert values == sorted(values, reverse=descending)
        header = next(h for h in response.context["headers"] if h["column"].key == column)
        assert header["state"] == ("descending" if descending else "ascending")
        assert f'aria-sort="{header["state"]}"' in response.content.decode()


def test_the_school_table_sorts_by_completion_and_the_header_flips(client_as, department_officer, figures):
    client = client_as(department_officer)
    division_b = School.objects.get(code="t-thcs-b").division
    extra = schools_make(2, division_b, prefix="t-s")
    progress_make(extra[0], students=10, records_acknowledged=5)  # 50 %; extra[1] has no students
    response = client.get(f"/don-vi/{division_b.code}/", {"sort": "-completion"})
    assert [row.key for row in response.context["rows"]] == ["t-thcs-b", extra[0].code, extra[1].code]
    header = next(h for h in response.context["headers"] if h["column"].key == "completion")
    assert "sort=completion" in header["url"]  # the next click sorts ascending
    response = client.get(f"/don-vi/{division_b.code}/", {"sort": "completion"})
    assert [row.key for row in response.context["rows"]] == [extra[0].code, "t-thcs-b", extra[1].code]


def test_an_unknown_sort_is_ignored_with_a_notice(client_as, department_officer, figures):
    response = client_as(department_officer).get("/so/", {"sort": "-password"})
    assert response.status_code == 200
    assert response.context["query"].sort == "name" and response.context["query"].notices


def test_the_filters_keep_the_rows_asked(client_as, department_officer, figures, school, direct_school):
    client = client_as(department_officer)
    keys = lambda response: [row.key for row in response.context["rows"]]  # noqa: E731
    assert keys(client.get("/so/", {"rejections": "1"})) == ["t-div-a", "direct"]
    assert keys(client.get("/so/", {"missing": "1"})) == ["t-div-a"]
    assert keys(client.get("/so/", {"kind": "commune"})) == ["t-div-b"]
    assert keys(client.get("/so/", {"q": "phường"})) == ["t-div-b"]
    # A level counts only the schools teaching it: upper secondary is the direct school alone.
    response = client.get("/so/", {"level": "upper_secondary"})
    assert {row.key: row.students for row in response.context["rows"]} == {
        "t-div-a": 0,
        "t-div-b": 0,
        "direct": 50,
    }
    on_division = client.get("/don-vi/t-div-a/", {"q": "không có trường này"})
    assert on_division.context["rows"] == []
    # The row filters choose the table's rows; the key figures stay the division's.
    assert on_division.context["total"].students == 40
    assert "Không có dòng nào" in on_division.content.decode() or on_division.context["query"].filtered


def test_a_nul_byte_in_a_parameter_is_refused_not_a_server_error(client_as, department_officer, figures):
    assert client_as(department_officer).get("/so/", {"q": "a\x00b"}).status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"level": "university"},
        {"kind": "kingdom"},
        {"format": "pdf"},
        {"q": "x" * 5000},
        {"rejections": "yes"},
    ],
)
def test_bad_parameters_never_fail(client_as, department_officer, figures, params):
    response = client_as(department_officer).get("/so/", params)
    assert response.status_code == 200
    assert len(response.context["query"].q) <= 100


def test_the_export_is_the_table_on_screen(client_as, department_officer, figures):
    import io

    import openpyxl

    client = client_as(department_officer)
    params = {"sort": "-students", "rejections": "1"}
    shown = client.get("/so/", params).context["rows"]
    response = client.get("/so/", {**params, "format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    lines = list(sheet.iter_rows(values_only=True))
    body = lines[2:-1]
    assert [line[0] for line in body] == [row.name for row in shown]
    assert [line[2] for line in body] == [row.students for row in shown] == [50, 40]
    assert lines[-1][2] == 90  # the totals line sums the rows shown


def test_the_export_of_a_division_keeps_names_as_text(client_as, division_officer, figures, school):
    import io

    import openpyxl

    School.objects.filter(pk=school.pk).update(name='=HYPERLINK("http://x")')
    response = client_as(division_officer).get("/don-vi/t-div-a/", {"format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    cell = sheet.cell(row=3, column=2)
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"


# --- Queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 30])
def test_the_pages_cost_the_same_queries_for_3_or_30_schools(
    count, client_as, department_officer, division_a, django_assert_num_queries
):
    for school in schools_make(count, division_a, prefix=f"t-p{count}-"):
        progress_make(school, students=10, records_acknowledged=3, rejections={"schema": 1})
        week_make(school, MONDAY, records_signed=3)
    client = client_as(department_officer)
    client.get("/so/")  # warm: the session, the two-factor flag
    for url, expected in (("/so/", PAGE_QUERIES_DEPARTMENT), ("/don-vi/t-div-a/", PAGE_QUERIES_DIVISION)):
        with django_assert_num_queries(expected):
            assert client.get(url).status_code == 200


# No SET search_path: the warm request left the connection on public (docs/architecture.md).
# Department: the user, its roles, the department, the years,
# schools per division, their sums, rejections, the divisions, the weeks. Division: the user, its
# roles, the division, the years, the rows, the schools, the weeks, the inactive schools.
PAGE_QUERIES_DEPARTMENT = 9
PAGE_QUERIES_DIVISION = 8


# --- Charts ----------------------------------------------------------------------------------


def test_the_weeks_chart_draws_shares_when_the_year_has_classes_and_students():
    from portal.progress.charts import weeks_chart
    from portal.progress.selectors import WeekPoint

    points = [
        WeekPoint(MONDAY, classes_approved=1, records_signed=10, records_acknowledged=0),
        WeekPoint(
            MONDAY + dt.timedelta(days=14), classes_approved=2, records_signed=40, records_acknowledged=20
        ),
    ]
    chart = weeks_chart(points, classes=2, students=40)
    assert chart.shares
    assert [label for _y, label in chart.y_ticks] == ["0 %", "25 %", "50 %", "75 %", "100 %"]
    approved, signed, acknowledged = chart.series
    # Every line ends at the top (100 %) but the acknowledged one, halfway.
    assert approved.dots[-1][1] == signed.dots[-1][1] == chart.top
    assert acknowledged.dots[-1][1] == (chart.top + chart.bottom) / 2
    assert chart.rows[1] == (MONDAY + dt.timedelta(days=14), ["100 % (2)", "100 % (40)", "50 % (20)"])
    # Two weeks apart: the first point on the left edge, the last on the right.
    assert (approved.dots[0][0], approved.dots[-1][0]) == (chart.left, chart.right)


def test_the_weeks_chart_falls_back_to_counts_without_students():
    from portal.progress.charts import weeks_chart
    from portal.progress.selectors import WeekPoint

    chart = weeks_chart([WeekPoint(MONDAY, 0, 7, 3)])
    assert not chart.shares
    assert chart.y_ticks[-1][1] == "8"  # steps of 2 up to 8
    assert chart.rows == [(MONDAY, ["0", "7", "3"])]


def test_the_completion_bars_are_proportional_and_say_their_figure():
    from portal.progress.charts import BAR_AREA, completion_bars
    from portal.progress.selectors import ProgressRow

    def row(name, students, acknowledged):
        counters = dict.fromkeys(COUNTERS, 0) | {"students": students, "records_acknowledged": acknowledged}
        return ProgressRow(kind="school", key=name, name=name, division_code="", schools=1, counters=counters)

    chart = completion_bars([row("A", 40, 10), row("B", 0, 0), row("C" * 80, 10, 10)])
    assert [bar.width for bar in chart.bars] == [BAR_AREA / 4, 0, BAR_AREA]
    assert [bar.text for bar in chart.bars] == ["25 %", "—", "100 %"]
    assert chart.bars[2].label.endswith("…") and chart.bars[2].title.startswith("C" * 80)


# --- The home page ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona_name", "link", "label"),
    [
        ("department_officer", 'href="/so/"', "Tiến độ các trường trong tỉnh"),
        ("division_manager", 'href="/don-vi/t-div-a/"', "Tiến độ các trường của đơn vị"),
    ],
)
def test_the_home_page_leads_supervisors_to_their_dashboard(client_as, persona, persona_name, link, label):
    page = client_as(persona(persona_name)).get("/", HTTP_ACCEPT_LANGUAGE="vi").content.decode()
    assert link in page and label in page


def test_the_dashboards_read_in_english_too(client_as, department_officer, figures):
    client = client_as(department_officer)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get("/so/").content.decode()
    assert "Directly under the department" in page and "Completion per division" in page
    assert "Records acknowledged by the Ministry" in page


def test_a_long_table_draws_only_its_first_rows_as_bars(client_as, department_officer, division_a):
    from portal.progress.charts import MAX_BARS

    for school in schools_make(MAX_BARS + 5, division_a, prefix="t-b"):
        progress_make(school, students=10, records_acknowledged=1)
    response = client_as(department_officer).get("/don-vi/t-div-a/", {"sort": "-completion"})
    assert len(response.context["rows"]) == MAX_BARS + 6  # the test school too
    assert len(response.context["bars"].bars) == MAX_BARS
    assert response.context["bars"].hidden == 6
