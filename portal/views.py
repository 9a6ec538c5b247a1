"""Public pages: where a user works, and the supervisors' dashboards.

The dashboards (issue 12) read only the public progress rows (portal.progress.selectors):
- `/so/`: the department's, per division and one row for the schools directly under it;
- `/so/truc-thuoc/`: those direct schools, one row each;
- `/don-vi/<code>/`: a division's schools, one row each (its officers and department staff);
- `/giam-sat/truong/<code>/`: one school's figures, with the way into its own pages for whoever
  holds the data-access grant (the school's pages log every such visit: portal.middleware).
Each table takes `year`, `sort`, `q`, `level`, `kind` (divisions), `rejections=1`, `missing=1`
and `format=xlsx` (portal.progress.tables).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from .choices import DivisionKind, SchoolLevel, ScopeKind
from .exports import progress_xlsx_response
from .hooks import classes_across_schools
from .http import AuthenticatedRequest
from .models import Department, School
from .models_progress import COUNTERS
from .permissions import access_for, can_open_school_data, can_supervise_school, can_use_admin
from .progress.charts import completion_bars, percent, weeks_chart
from .progress.selectors import (
    ProgressRow,
    WeekPoint,
    progress_by_division,
    progress_by_school,
    progress_total,
    progress_weeks,
    progress_years,
    rejection_label,
)
from .progress.tables import (
    DIVISION_COLUMNS,
    SCHOOL_COLUMNS,
    Column,
    TableQuery,
    cell_text,
    rows_apply,
    table_lines,
    table_query_parse,
)
from .selectors import divisions_for, schools_for, workplaces_for


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    """The landing page after login: every place the user holds a role, one click away, and one
    list of the user's classes across all the schools where they teach (issue 14: visiting and
    contract teachers work in several; one query per school, through portal.hooks)."""
    workplaces = workplaces_for(request.user)
    schools = [
        w["place"]
        for w in workplaces
        if w["kind"] == ScopeKind.SCHOOL and isinstance(w["place"], School) and w["place"].active
    ]
    until = {w["place"].pk: w["until"] for w in workplaces if isinstance(w["place"], School)}
    classes = classes_across_schools(request.user, schools)
    for entry in classes:
        entry["until"] = until.get(entry["school"].pk)
    return render(
        request,
        "portal/home.html",
        {
            "workplaces": workplaces,
            "classes": classes,
            "department": Department.objects.first(),
            "can_use_admin": can_use_admin(request.user),
        },
    )


def _rejections(total: ProgressRow) -> list[tuple[str, str, int]]:
    """(code, label, records) of the rejections, most frequent first."""
    return [
        (code, rejection_label(code), n)
        for code, n in sorted(total.rejections.items(), key=lambda item: (-item[1], item[0]))
    ]


def _level_schools(query: TableQuery, schools: QuerySet[School]) -> QuerySet[School]:
    return schools.filter(levels__contains=[query.level]) if query.level else schools


def _dashboard(
    request: AuthenticatedRequest,
    *,
    template: str,
    title: str,
    filename: str,
    columns: Sequence[Column],
    rows: list[ProgressRow],
    weeks: list[WeekPoint],
    query: TableQuery,
    context: dict,
) -> HttpResponse:
    """What every dashboard shares: the rows filtered and sorted, the totals, the charts, or the
    same table as an Excel workbook."""
    shown = rows_apply(rows, query, columns)
    shown_total = progress_total(shown, name=_("Total"))
    if query.export:
        return progress_xlsx_response(
            filename=filename,
            title=title,
            school_year=query.year,
            columns=columns,
            rows=shown,
            total=shown_total,
        )
    total = progress_total(rows)
    return render(
        request,
        template,
        {
            **context,
            "title": title,
            "query": query,
            "columns": columns,
            "headers": [
                {
                    "column": c,
                    "url": query.sort_url(c.key),
                    "state": ("descending" if query.descending else "ascending")
                    if c.key == query.sort
                    else "",
                }
                for c in columns
            ],
            "rows": shown,
            "lines": table_lines(shown, columns, year=query.year),
            "total_numbers": [cell_text(c, shown_total) for c in columns if c.numeric],
            "has_code": any(c.key == "code" for c in columns),
            "total": total,
            "shown_total": shown_total,
            "completion": percent(total.completion),
            "approved": percent(total.approved_share),
            "signed": percent(total.signed_share),
            "bars": completion_bars(shown),
            "weeks": weeks,
            "weeks_chart": weeks_chart(weeks, classes=total.classes, students=total.students),
            "rejections": _rejections(total),
            "levels": SchoolLevel.choices,
            "kinds": DivisionKind.choices,
        },
    )


@login_required
def department_overview(request: AuthenticatedRequest) -> HttpResponse:
    """The province at a glance, for department staff: a row per division and one for the
    schools directly under the department; the weeks of the closing season; rejections."""
    if not access_for(request.user).is_department_staff:
        raise Http404
    department = Department.objects.first()
    query = table_query_parse(request.GET, years=progress_years(), columns=DIVISION_COLUMNS)
    counted = _level_schools(query, School.objects.all())
    # Without any figures yet (a new province) the rows still list every division, at zero.
    rows = progress_by_division(school_year=query.year, schools=counted)
    # An export holds the table only: no weeks to sum.
    weeks = [] if query.export else progress_weeks(school_year=query.year, schools=counted)
    name = department.name if department else _("Department")
    return _dashboard(
        request,
        template="portal/department.html",
        title=name,
        filename="so-tien-do",
        columns=DIVISION_COLUMNS,
        rows=rows,
        weeks=weeks,
        query=query,
        context={"department": department},
    )


@login_required
def department_direct(request: AuthenticatedRequest) -> HttpResponse:
    """The schools directly under the department (upper secondary, continuing education), one row
    each, for department staff."""
    if not access_for(request.user).is_department_staff:
        raise Http404
    department = Department.objects.first()
    schools = schools_for(request.user).filter(division__isnull=True)
    return _schools_dashboard(
        request,
        schools=schools,
        title=_("Schools directly under the department"),
        filename="truc-thuoc-so",
        context={"department": department, "direct": True},
    )


@login_required
def division_detail(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """A division's schools, one row each, for its officers and department staff (404 to others)."""
    division = divisions_for(request.user).filter(code__iexact=code).first()
    if division is None:
        raise Http404
    schools = schools_for(request.user).filter(division=division)
    return _schools_dashboard(
        request,
        schools=schools,
        title=division.name,
        filename=division.code,
        context={
            "division": division,
            "department_staff": access_for(request.user).is_department_staff,
        },
    )


def _schools_dashboard(
    request: AuthenticatedRequest, *, schools: QuerySet[School], title: str, filename: str, context: dict
) -> HttpResponse:
    query = table_query_parse(request.GET, years=progress_years(), columns=SCHOOL_COLUMNS)
    # The level decides what is counted (the key figures, the weeks, the table); the name search
    # and the other filters only which rows the table, the bars and the export show (rows_apply).
    counted = _level_schools(query, schools)
    rows = progress_by_school(school_year=query.year, schools=counted)
    # An export holds the table only: no weeks to sum.
    weeks = [] if query.export else progress_weeks(school_year=query.year, schools=counted)
    return _dashboard(
        request,
        template="portal/division.html",
        title=title,
        filename=filename,
        columns=SCHOOL_COLUMNS,
        rows=rows,
        weeks=weeks,
        query=query,
        context={**context, "inactive": schools.filter(active=False).order_by("name")},
    )


def supervised_school_for(request: AuthenticatedRequest, code: str) -> School:
    """The school, if the user supervises it: department staff, or an officer of its division.

    Everyone else gets 404, its own staff included (they have the school's own pages).
    """
    school = School.objects.select_related("division").filter(code__iexact=code).first()
    if school is None or not can_supervise_school(request.user, school):
        raise Http404
    return school


@login_required
def school_progress(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """One school's figures for a year, its weeks and rejections; with the data-access grant, the
    way into its own pages (every visit there is logged by the school's middleware)."""
    school = supervised_school_for(request, code)
    years = progress_years()
    query = table_query_parse(request.GET, years=years, columns=SCHOOL_COLUMNS)
    one = School.objects.filter(pk=school.pk)
    rows = progress_by_school(school_year=query.year, schools=one) if query.year else []
    row = rows[0] if rows else None
    weeks = progress_weeks(school_year=query.year, schools=one) if query.year and row else []
    figures = []
    if row is not None:
        figures = [(name, label, row.counters[name]) for name, label in COUNTERS.items()]
        # The records signed by the principal or further, right after those only signed so far.
        after = list(COUNTERS).index("records_signed_principal") + 1
        signed = _("Records signed by the principal or further along")
        figures.insert(after, ("records_signed", signed, row.records_signed))
    return render(
        request,
        "portal/school_progress.html",
        {
            "school": school,
            "query": query,
            "row": row,
            "figures": figures,
            "completion": percent(row.completion) if row else "",
            "books": percent(row.books_share) if row else "",
            "approved": percent(row.approved_share) if row else "",
            "signed": percent(row.signed_share) if row else "",
            "weeks": weeks,
            "weeks_chart": weeks_chart(weeks, classes=row.classes, students=row.students)
            if row
            else weeks_chart([]),
            "rejections": _rejections(row) if row else [],
            "can_open": can_open_school_data(request.user, school),
            "department_staff": access_for(request.user).is_department_staff,
        },
    )
