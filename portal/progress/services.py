"""Writes to the progress rows: each app recounts its part, under the row's lock, in its transaction.

design.md §3: the province's and divisions' pages read `portal.SchoolProgress`, never a school's
schema. The apps above register the part of the row they own (`progress_part_register`, from
their AppConfig.ready): a function that counts it in the school's schema. Each service that
changes what a part counts calls `progress_recount` before its transaction commits:

- the row is created if missing and locked (SELECT … FOR UPDATE), *then* counted: a concurrent
  transaction of the same school waits for the lock and counts after this one committed, so the
  last to commit always writes what the school holds (READ COMMITTED takes a snapshot per
  statement);
- only the part's counters are written, and only when they changed; what the weekly figures
  moved is added to the current week (ProgressWeek) in the same transaction.

A service that changes many things (a class's records confirmed at once, an import) runs inside
`progress_batch()`: the recounts it asks for (`progress_changed`) are made once, when the batch
ends, still inside its transaction.

`progress_reconcile` (`manage.py progress_reconcile`) recounts every part of every school and
reports the drift it corrected.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection as _django_connection
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ..choices import AuditAction
from ..db import connection
from ..models import School, User
from ..models_progress import COUNTERS, WEEKLY, ProgressWeek, SchoolProgress
from ..services import audit_record

Counter = Callable[[School, str], Mapping[str, Any]]
Years = Callable[[School], Iterable[str]]


@dataclass(frozen=True)
class Part:
    name: str
    count: Counter  # run in the school's schema: {counter name: value} for one school year
    fields: tuple[str, ...]


_parts: dict[str, Part] = {}
_years: list[Years] = []

FIELDS = frozenset(COUNTERS) | {"rejections"}


def progress_part_register(name: str, count: Counter, fields: Iterable[str]) -> None:
    """An app's part of the progress row: the counters it owns and the function that counts them."""
    fields = tuple(fields)
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"progress part {name}: unknown counters {sorted(unknown)}")
    for other in _parts.values():
        if other.name != name and set(other.fields) & set(fields):
            raise ValueError(
                f"progress parts {name} and {other.name} both count {set(other.fields) & set(fields)}"
            )
    _parts[name] = Part(name, count, fields)


def progress_years_register(years: Years) -> None:
    """The school years a school holds (schools registers it), for the reconciliation."""
    if years not in _years:
        _years.append(years)


def progress_parts() -> list[str]:
    return list(_parts)


def _week(today: dt.date) -> dt.date:
    return today - dt.timedelta(days=today.weekday())


def _weekly(row: SchoolProgress) -> dict[str, int]:
    return {
        "classes_approved": row.classes_approved,
        "records_signed": row.records_signed,
        "records_acknowledged": row.records_acknowledged,
    }


class _InSchool:
    """Count in the school's schema, whichever the connection was in (restored after). Not
    `with school:`, which switches even when the connection is there already (the services' case)
    and so costs every recount another `SET search_path`."""

    def __init__(self, school: School) -> None:
        self.school = school
        self.previous: Any = None

    def __enter__(self) -> None:
        if connection.schema_name != self.school.schema_name:
            self.previous = connection.tenant
            connection.set_tenant(self.school)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            if getattr(self.previous, "schema_name", "public") == "public":
                connection.set_schema_to_public()
            else:
                connection.set_tenant(self.previous)


def _locked(school: School, school_year: str) -> SchoolProgress:
    found = SchoolProgress.objects.select_for_update().filter(school=school, school_year=school_year).first()
    if found is not None:
        return found
    with _django_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO public.{SchoolProgress._meta.db_table} (school_id, school_year, "  # noqa: S608 -- our table names
            + ", ".join(COUNTERS)
            + ", rejections, updated_at) VALUES (%s, %s, "
            + ", ".join("0" for _ in COUNTERS)
            + ", '{}'::jsonb, now()) ON CONFLICT (school_id, school_year) DO NOTHING",
            [school.pk, school_year],
        )
    return SchoolProgress.objects.select_for_update().get(school=school, school_year=school_year)


@dataclass
class Drift:
    """What a recount changed on one row: {counter: (stored, counted)}."""

    school: School
    school_year: str
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def progress_recount(
    *, school: School, school_year: str, parts: Iterable[str] | None = None, weeks_checked: bool = False
) -> Drift:
    """Recount the given parts (all when None) of one school's row for one year, under its lock.

    Call it inside the transaction of the change, after the change: the row stays locked until
    that transaction ends. Returns what changed. With `weeks_checked` (the reconciliation), what
    the week moved is measured against the sum of the weeks rather than the stored row, so that
    the weeks add up to the row again whatever had drifted.
    """
    wanted = set(_parts) if parts is None else set(parts)
    unknown = wanted - set(_parts)
    if unknown:
        raise ValueError(f"unknown progress parts {sorted(unknown)}")
    names = [name for name in _parts if name in wanted]
    drift = Drift(school, school_year)
    with transaction.atomic():
        row = _locked(school, school_year)
        before = _weeks_sum(school, school_year) if weeks_checked else _weekly(row)
        with _InSchool(school):
            for name in names:
                part = _parts[name]
                counted = part.count(school, school_year)
                for key in part.fields:
                    value = counted[key]
                    if key == "rejections":
                        value = {code: n for code, n in sorted(value.items()) if n}
                    if getattr(row, key) != value:
                        drift.changes[key] = (getattr(row, key), value)
                        setattr(row, key, value)
        if drift.changes:
            row.updated_at = timezone.now()
            row.save(update_fields=[*drift.changes, "updated_at"])
        if drift.changes or weeks_checked:
            moved = {key: value - before[key] for key, value in _weekly(row).items()}
            if any(moved.values()):
                _week_add(school, school_year, moved)
    return drift


def _weeks_sum(school: School, school_year: str) -> dict[str, int]:
    sums = ProgressWeek.objects.filter(school=school, school_year=school_year).aggregate(
        **{name: Sum(name) for name in WEEKLY}
    )
    return {name: sums[name] or 0 for name in WEEKLY}


def _week_add(school: School, school_year: str, moved: dict[str, int]) -> None:
    table = ProgressWeek._meta.db_table
    with _django_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO public.{table} (school_id, school_year, week, {', '.join(WEEKLY)}) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (school_id, school_year, week) DO UPDATE SET "
            + ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in WEEKLY),
            [school.pk, school_year, _week(timezone.localdate()), *(moved[name] for name in WEEKLY)],
        )


def progress_school_years(school: School) -> list[str]:
    """The school years a school holds (counted in its schema) and those it has a row for."""
    years: set[str] = set(SchoolProgress.objects.filter(school=school).values_list("school_year", flat=True))
    with _InSchool(school):
        for function in _years:
            years.update(function(school))
    return sorted(years, reverse=True)


def progress_reconcile(*, schools: Iterable[School] | None = None, actor: User | None = None) -> list[Drift]:
    """Recount every part of every (active) school's rows; audit and return what drifted.

    One transaction per school, so a school's services wait for its recount and no more.
    """
    drifts: list[Drift] = []
    targets = (
        School.objects.filter(active=True).exclude(schema_name="public").order_by("pk")
        if schools is None
        else schools
    )
    for school in targets:
        with transaction.atomic():
            # Years in ascending order, as batches lock them (no deadlock with an import that
            # recounts several years of the school).
            for school_year in sorted(progress_school_years(school)):
                drift = progress_recount(school=school, school_year=school_year, weeks_checked=True)
                if drift.changes:
                    drifts.append(drift)
                    audit_record(
                        actor=actor,
                        action=AuditAction.PROGRESS_RECONCILED,
                        obj=school,
                        summary=f"{school.code} {school_year}: " + ", ".join(sorted(drift.changes)),
                        changes={key: [a, b] for key, (a, b) in drift.changes.items()},  # ints and dicts
                        school=school,
                        division=school.division,
                    )
    return drifts


# --- Batches: one recount per school year at the end of a service that changes many rows ------

_batch = threading.local()


@contextmanager
def progress_batch() -> Iterator[None]:
    """Collect the recounts asked for inside, and make them once on the way out (in the caller's
    transaction: put it inside the service's `transaction.atomic`). Nested batches join the
    outermost one. Nothing is recounted when the block raises (its transaction rolls back)."""
    outer = getattr(_batch, "marks", None) is None
    if outer:
        _batch.marks = {}
    try:
        yield
        if outer:
            marks = _batch.marks
            _batch.marks = None  # recounts below are made at once
            for (_pk, school_year), (school, parts) in sorted(marks.items(), key=lambda item: item[0]):
                progress_recount(school=school, school_year=school_year, parts=parts)
    finally:
        if outer:
            _batch.marks = None


def progress_changed(
    *, school_year: str, school: School | None = None, parts: Iterable[str] | None = None
) -> None:
    """What some of the school's counters count has changed for this school year: recount those
    parts of its row now (inside the caller's transaction, after the change), or at the end of
    the batch.

    `parts`: the parts the change can move (progress_parts(); None: all). A change recounts only
    those, so a record's status step costs the lock and two queries, not every count of the
    school (bench/progress.py). Whatever a transaction changes, it must name every part that
    counts it: the last transaction to commit writes what the school holds only for the parts it
    recounts. `school` defaults to the connection's school (the services of a school's schema run
    there).
    """
    if school is None:
        tenant = connection.tenant
        if not isinstance(tenant, School):
            return  # the public schema: no school's data changed
        school = tenant
    names = None if parts is None else frozenset(parts)
    marks = getattr(_batch, "marks", None)
    if marks is not None:
        key = (school.pk, school_year)
        if key in marks:
            earlier = marks[key][1]
            names = None if earlier is None or names is None else earlier | names
        marks[key] = (school, names)
        return
    progress_recount(school=school, school_year=school_year, parts=names)
