"""Reads of the progress rows for the supervisors' dashboards and the partner API.

Everything is summed in SQL (SUM … GROUP BY) from the public tables: a fixed number of queries
whatever the number of schools (a province has about a thousand), never a school's schema
(design.md §3). Inactive schools are not counted. Scoping (which divisions and schools a user
may see) is the caller's: pass `portal.selectors.divisions_for(user)` / `schools_for(user)`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection as _django_connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from ..models import Division, School
from ..models_progress import COUNTERS, SIGNED_COUNTERS, WEEKLY, ProgressWeek, SchoolProgress

# Row kinds.
KIND_DIVISION = "division"
KIND_DIRECT = "direct"
KIND_SCHOOL = "school"
DIRECT_KEY = "direct"

# The Ministry's coded rejection reasons (registry.choices.RejectionCode, which portal cannot
# import: it sits above in the chain). Same English text, so the same Vietnamese translation.
REJECTION_LABELS = {
    "schema": _("The document does not follow the Ministry's format (XSD)."),
    "signature": _("A signature does not verify or its certificate is not trusted by the Ministry."),
    "personal_id_missing": _("The student's personal ID number is missing."),
    "unknown_school": _("The Ministry does not know this school under the Department."),
    "mismatch": _("The envelope (school, record, version) disagrees with the document."),
    "unknown_version": _("The version corrected or revoked is not held by the Ministry."),
}


def rejection_label(code: str) -> str:
    """The reason's label, or the code itself for a reason this portal does not know yet."""
    label = REJECTION_LABELS.get(code)
    return str(label) if label is not None else str(_("Other reason (%(code)s)") % {"code": code})


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class ProgressRow:
    """A division's, the department's direct schools' or one school's figures for a school year."""

    kind: str  # KIND_DIVISION, KIND_DIRECT or KIND_SCHOOL
    key: str  # division code, "direct", or school code
    name: str
    division_code: str  # a school's division ("" when direct); a division's own code; "" for direct
    schools: int  # active schools counted (1 for a school row)
    counters: dict[str, int]  # every name of COUNTERS, summed
    rejections: dict[str, int] = field(default_factory=dict)  # reason code: records
    levels: tuple[str, ...] = ()  # a school's levels (empty for the others)
    division_kind: str = ""  # a division's kind (empty for the others)

    def __getattr__(self, name: str) -> int:
        # row.students, row.records_queued …: the counters read as attributes (templates, sorting).
        counters = self.__dict__.get("counters")
        if counters is not None and name in counters:
            return counters[name]
        raise AttributeError(name)

    @property
    def records_signed(self) -> int:
        """Records signed by the principal or further along (as SchoolProgress.records_signed)."""
        return sum(self.counters[name] for name in SIGNED_COUNTERS)

    @property
    def completion(self) -> float | None:
        """The Ministry's figure: records acknowledged ÷ students (None without students)."""
        return _share(self.counters["records_acknowledged"], self.counters["students"])

    @property
    def books_share(self) -> float | None:
        """Classes whose grade book is complete ÷ classes."""
        return _share(self.counters["classes_books_complete"], self.counters["classes"])

    @property
    def approved_share(self) -> float | None:
        """Classes whose year the principal approved ÷ classes."""
        return _share(self.counters["classes_approved"], self.counters["classes"])

    @property
    def signed_share(self) -> float | None:
        """Records signed by the principal (or further) ÷ students."""
        return _share(self.records_signed, self.counters["students"])

    @property
    def rejections_total(self) -> int:
        return sum(self.rejections.values())

    def as_dict(self) -> dict[str, object]:
        """Plain data (the API, the export)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "name": self.name,
            "division_code": self.division_code,
            "schools": self.schools,
            **self.counters,
            "records_signed": self.records_signed,
            "completion": self.completion,
            "rejections": dict(self.rejections),
        }


@dataclass(frozen=True)
class WeekPoint:
    """Where the weekly figures stood at the end of an ISO week (Monday's date): cumulative."""

    week: dt.date
    classes_approved: int
    records_signed: int
    records_acknowledged: int


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


_SUMS = {f"sum_{name}": Sum(name) for name in COUNTERS}


def _counters(values: dict) -> dict[str, int]:
    return {name: int(values.get(f"sum_{name}") or 0) for name in COUNTERS}


def progress_years() -> list[str]:
    """The school years that have progress rows, newest first."""
    return list(
        SchoolProgress.objects.order_by("-school_year").values_list("school_year", flat=True).distinct()
    )


def _active(schools: QuerySet[School] | None) -> QuerySet[School]:
    qs = School.objects.filter(active=True)
    if schools is not None:
        qs = qs.filter(pk__in=schools.values("pk"))
    return qs


def _rejections_by(group: str, *, school_year: str, school_ids_sql: str, params: list) -> dict:
    """{group value: {reason: n}} summed in SQL over the rows' JSON (one query)."""
    progress = SchoolProgress._meta.db_table
    school = School._meta.db_table
    sql = (
        f"SELECT {group}, r.key, SUM(r.value::bigint) "  # noqa: S608 -- our table and column names
        f"FROM public.{progress} p JOIN public.{school} s ON s.id = p.school_id "
        "CROSS JOIN LATERAL jsonb_each_text(p.rejections) AS r(key, value) "
        f"WHERE p.school_year = %s AND s.id IN ({school_ids_sql}) AND r.value ~ '^[0-9]+$' "
        f"GROUP BY {group}, r.key"
    )
    found: dict = {}
    with _django_connection.cursor() as cursor:
        cursor.execute(sql, [school_year, *params])
        for owner, reason, total in cursor.fetchall():
            if total:
                found.setdefault(owner, {})[reason] = int(total)
    return found


def _ids_sql(schools: QuerySet[School]) -> tuple[str, list]:
    sql, params = schools.values("pk").query.sql_with_params()
    return sql, list(params)


def progress_by_division(
    *,
    school_year: str,
    divisions: QuerySet[Division] | Iterable[Division] | None = None,
    include_direct: bool = True,
    schools: QuerySet[School] | None = None,
) -> list[ProgressRow]:
    """One row per division (with its active schools summed), then one for the schools directly
    under the department (include_direct). `schools` narrows which schools are counted (a level
    filter, say). Divisions without rows show zeros. Three queries whatever the number of schools.
    """
    if divisions is None:
        divisions = Division.objects.all()
    division_list = list(divisions.order_by("name") if isinstance(divisions, QuerySet) else divisions)
    counted = _active(schools)
    if not include_direct:
        counted = counted.filter(division__in=[d.pk for d in division_list])
    else:
        counted = counted.filter(Q(division__in=[d.pk for d in division_list]) | Q(division__isnull=True))

    # Schools per division (those without a row too), then their rows' counters: one query each.
    school_counts = {
        row["division_id"]: row["n"]
        for row in counted.values("division_id").annotate(n=Count("pk")).order_by()
    }
    sums = {
        row["school__division_id"]: row
        for row in SchoolProgress.objects.filter(school_year=school_year, school__in=counted)
        .values("school__division_id")
        .annotate(**_SUMS)
        .order_by()
    }
    ids_sql, params = _ids_sql(counted)
    rejections = _rejections_by(
        "s.division_id", school_year=school_year, school_ids_sql=ids_sql, params=params
    )

    rows = [
        ProgressRow(
            kind=KIND_DIVISION,
            key=d.code,
            name=d.name,
            division_code=d.code,
            schools=school_counts.get(d.pk, 0),
            counters=_counters(sums.get(d.pk, {})),
            rejections=rejections.get(d.pk, {}),
            division_kind=d.kind,
        )
        for d in division_list
    ]
    if include_direct:
        direct = sums.get(None, {})
        rows.append(
            ProgressRow(
                kind=KIND_DIRECT,
                key=DIRECT_KEY,
                name=str(_("Directly under the department")),
                division_code="",
                schools=school_counts.get(None, 0),
                counters=_counters(direct),
                rejections=rejections.get(None, {}),
            )
        )
    return rows


def progress_by_school(*, school_year: str, schools: QuerySet[School]) -> list[ProgressRow]:
    """One row per active school of `schools` (zeros for a school without a row), by name.

    Two queries whatever the number of schools.
    """
    progress = {
        p["school_id"]: p
        for p in SchoolProgress.objects.filter(school_year=school_year, school__in=_active(schools)).values(
            "school_id", "rejections", *COUNTERS
        )
    }
    rows = []
    for school in _active(schools).select_related("division").order_by("name", "code"):
        found = progress.get(school.pk, {})
        rejections = found.get("rejections") or {}
        rows.append(
            ProgressRow(
                kind=KIND_SCHOOL,
                key=school.code,
                name=school.name,
                division_code=school.division.code if school.division else "",
                schools=1,
                counters={name: int(found.get(name) or 0) for name in COUNTERS},
                rejections={
                    str(k): int(v)
                    for k, v in rejections.items()
                    if isinstance(v, int) and not isinstance(v, bool) and v
                },
                levels=tuple(school.levels),
            )
        )
    return rows


def progress_total(rows: Iterable[ProgressRow], *, name: str = "") -> ProgressRow:
    """The sum of rows (the province's or a division's totals line), without a query."""
    counters = _zero()
    rejections: dict[str, int] = {}
    schools = 0
    for row in rows:
        schools += row.schools
        for key, value in row.counters.items():
            counters[key] += value
        for key, value in row.rejections.items():
            rejections[key] = rejections.get(key, 0) + value
    return ProgressRow(
        kind="total",
        key="total",
        name=name,
        division_code="",
        schools=schools,
        counters=counters,
        rejections=rejections,
    )


def progress_weeks(*, school_year: str, schools: QuerySet[School]) -> list[WeekPoint]:
    """The closing season week by week: the weekly figures' running totals over the active
    schools of `schools`, one point per week that moved (one query)."""
    moved = (
        ProgressWeek.objects.filter(school_year=school_year, school__in=_active(schools))
        .values("week")
        .annotate(**{name: Sum(name) for name in WEEKLY})
        .order_by("week")
    )
    points = []
    running = dict.fromkeys(WEEKLY, 0)
    for week in moved:
        for name in WEEKLY:
            running[name] += int(week[name] or 0)
        points.append(WeekPoint(week=week["week"], **running))
    return points
