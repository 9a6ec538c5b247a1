"""The dashboards' tables: which columns, what the query string asks (year, sort, filters, export),
and applying it to progress rows.

Parameters are read leniently: a bad value is ignored and a notice says so (never a 500). Rows
are filtered and sorted in Python: there is one per division or per school of a division (a
province has about a thousand schools in all), already summed in SQL by the selectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.http import QueryDict
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..choices import DivisionKind, SchoolLevel
from ..models_progress import COUNTERS
from .charts import percent
from .selectors import KIND_DIRECT, KIND_DIVISION, ProgressRow


@dataclass(frozen=True)
class Column:
    key: str  # also the `sort=` value
    label: str | Promise  # a lazy translation, read in the request's language
    value: Callable[[ProgressRow], object]
    percent: bool = False
    numeric: bool = True


def _counter(name: str, label: str | Promise | None = None) -> Column:
    return Column(name, label or COUNTERS[name], lambda row: row.counters[name])


NAME = Column("name", _("Division"), lambda row: row.name, numeric=False)
SCHOOL_NAME = Column("name", _("School"), lambda row: row.name, numeric=False)
SCHOOLS = Column("schools", _("Schools"), lambda row: row.schools)
CODE = Column("code", _("Code"), lambda row: row.key, numeric=False)
FIGURES = [
    _counter("students", _("Students")),
    Column("completion", _("Completion"), lambda row: row.completion, percent=True),
    _counter("classes_approved", _("Classes approved")),
    Column("records_signed", _("Records signed"), lambda row: row.records_signed),
    _counter("records_queued", _("Queued for the Ministry")),
    _counter("records_acknowledged", _("Acknowledged by the Ministry")),
    _counter("records_rejected", _("Rejected")),
    _counter("students_without_personal_id", _("Missing personal IDs")),
    _counter("students_waiting_summer", _("Waiting for the August close")),
]
DIVISION_COLUMNS = [NAME, SCHOOLS, *FIGURES]
SCHOOL_COLUMNS = [CODE, SCHOOL_NAME, *FIGURES]

FORMAT_XLSX = "xlsx"


@dataclass
class TableQuery:
    """What the query string asks of a dashboard, once checked."""

    year: str = ""
    years: list[str] = field(default_factory=list)
    sort: str = "name"
    descending: bool = False
    q: str = ""
    level: str = ""
    kind: str = ""
    only_rejections: bool = False
    only_missing: bool = False
    export: str = ""
    notices: list[str] = field(default_factory=list)
    params: QueryDict = field(default_factory=QueryDict)

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.level or self.kind or self.only_rejections or self.only_missing)

    def url(self, **changes: str | None) -> str:
        """This page's query string with some parameters changed (None drops one)."""
        params = self.params.copy()
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        encoded = params.urlencode()
        return "?" + encoded if encoded else "?"

    def sort_url(self, key: str) -> str:
        """The header's link: ascending first, then descending (the current state flips)."""
        if key == self.sort and not self.descending:
            return self.url(sort="-" + key)
        return self.url(sort=key)

    def export_url(self) -> str:
        return self.url(format=FORMAT_XLSX)


MAX_SEARCH = 100


def table_query_parse(params: QueryDict, *, years: list[str], columns: Sequence[Column]) -> TableQuery:
    """Read year, sort, q, level, kind, rejections, missing and format from the query string.

    Anything unknown is ignored with a notice; the page then shows what it would by default.
    """
    query = TableQuery(years=years, params=params.copy())
    query.params.pop("format", None)

    year = params.get("year", "")
    if year and year not in years:
        query.notices.append(str(_("There are no figures for the school year asked; showing the newest.")))
        query.params.pop("year", None)
        year = ""
    query.year = year or (years[0] if years else "")

    sort = params.get("sort", "")
    if sort:
        key = sort.removeprefix("-")
        if key in {c.key for c in columns}:
            query.sort, query.descending = key, sort.startswith("-")
        else:
            query.notices.append(str(_("This table cannot be sorted that way; sorted by name.")))
            query.params.pop("sort", None)

    query.q = params.get("q", "").strip()[:MAX_SEARCH]
    level = params.get("level", "")
    if level and level not in SchoolLevel.values:
        query.notices.append(str(_("Unknown school level; all levels are shown.")))
        query.params.pop("level", None)
    else:
        query.level = level
    kind = params.get("kind", "")
    if kind and kind not in DivisionKind.values:
        query.notices.append(str(_("Unknown kind of division; all kinds are shown.")))
        query.params.pop("kind", None)
    else:
        query.kind = kind
    query.only_rejections = params.get("rejections") == "1"
    query.only_missing = params.get("missing") == "1"

    export = params.get("format", "")
    if export and export != FORMAT_XLSX:
        query.notices.append(str(_("Unknown export format; the page is shown instead.")))
    else:
        query.export = export
    return query


def rows_apply(rows: list[ProgressRow], query: TableQuery, columns: Sequence[Column]) -> list[ProgressRow]:
    """The rows the query keeps (name or code search, division kind, with rejections, with
    missing IDs), in the order it asks. Rows without a value (a share without students) go last
    whichever the direction."""
    needle = query.q.casefold()
    kept = [
        row
        for row in rows
        if (not needle or needle in row.name.casefold() or needle in row.key.casefold())
        and (not query.kind or (row.kind == KIND_DIVISION and row.division_kind == query.kind))
        and (not query.only_rejections or row.counters["records_rejected"] > 0 or row.rejections)
        and (not query.only_missing or row.counters["students_without_personal_id"] > 0)
    ]
    column = (
        next(c for c in columns if c.key == query.sort) if query.sort in {c.key for c in columns} else NAME
    )
    present = [row for row in kept if column.value(row) is not None]
    absent = [row for row in kept if column.value(row) is None]

    def key(row: ProgressRow) -> object:
        value = column.value(row)
        return value.casefold() if isinstance(value, str) else value

    present.sort(key=lambda row: row.name.casefold())  # ties in name order, whichever direction
    present.sort(key=key, reverse=query.descending)  # type: ignore[arg-type]  # one type per column
    return present + absent


def cell_text(column: Column, row: ProgressRow) -> str:
    value = column.value(row)
    if column.percent:
        return percent(value)  # type: ignore[arg-type]  # a share or None
    return str(value)


@dataclass(frozen=True)
class Line:
    """A table row ready to print: where its name leads, its code (school tables), its figures."""

    row: ProgressRow
    href: str
    code: str | None
    name: str
    numbers: list[str]


def table_lines(rows: Sequence[ProgressRow], columns: Sequence[Column], *, year: str) -> list[Line]:
    """The rows as the table prints them, computed here rather than cell by cell in the template
    (a division of a few hundred schools renders several times faster)."""
    figures = [c for c in columns if c.numeric]
    has_code = any(c.key == CODE.key for c in columns)
    query = f"?year={year}" if year else ""
    lines = []
    for row in rows:
        if row.kind == KIND_DIVISION:
            href = reverse("portal:division", args=[row.key])
        elif row.kind == KIND_DIRECT:
            href = reverse("portal:department_direct")
        else:
            href = reverse("portal:school_progress", args=[row.key])
        lines.append(
            Line(
                row=row,
                href=href + query,
                code=row.key if has_code else None,
                name=row.name,
                numbers=[cell_text(c, row) for c in figures],
            )
        )
    return lines
