"""Reads of the registry (style.md: selectors): the public index of issued records, and the
outbox to the Ministry as a school and the Department's operators see it.

The index rows are written by transcripts through portal.services when a version is issued,
superseded or revoked (the index is portal's: transcripts reads it too, docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, Exists, Min, OuterRef

from portal.choices import IssuedRecordStatus
from portal.models import IssuedRecord, School
from transcripts.records.selectors import record_versions_where

from .choices import MessageKind, OutboxState
from .forwarding import rejection_text
from .models import OutboxMessage


def issued_record_for(*, record_id: str, version: int) -> IssuedRecord | None:
    """The index row of one issued version, with its school, or None."""
    return IssuedRecord.objects.select_related("school").filter(record_id=record_id, version=version).first()


def newest_later_version(entry: IssuedRecord) -> IssuedRecord | None:
    """The newest version of the same record issued after `entry`, or None."""
    return (
        IssuedRecord.objects.filter(record_id=entry.record_id, version__gt=entry.version)
        .order_by("-version")
        .first()
    )


# --- The outbox, for a school --------------------------------------------------------------------


@dataclass
class Rejection:
    record_id: str
    version: int
    reason: str
    decided_at: object
    class_id: int | None = None
    student_name: str = ""


@dataclass
class SchoolForwarding:
    """A school's messages to the Ministry by state, and its latest rejections with their reasons."""

    by_state: dict[str, int] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def acknowledged(self) -> int:
        return self.by_state.get(OutboxState.ACKNOWLEDGED, 0)

    @property
    def on_the_way(self) -> int:
        return sum(
            self.by_state.get(s, 0) for s in (OutboxState.PENDING, OutboxState.SENDING, OutboxState.SENT)
        )


def school_forwarding(school: School, *, rejections: int = 20) -> SchoolForwarding:
    """Counts by state (one query) and the latest rejections, each placed in its class (two more,
    only when there are some; the connection is on the school's schema)."""
    summary = SchoolForwarding(
        by_state=dict(
            OutboxMessage.objects.filter(school=school)
            .values_list("state")
            .annotate(n=Count("pk"))
            .order_by()
        )
    )
    if not summary.by_state.get(OutboxState.REJECTED):
        return summary  # nothing rejected: one query in all
    rejected = list(
        OutboxMessage.objects.filter(school=school, state=OutboxState.REJECTED)
        .order_by("-decided_at", "-pk")
        .values_list("record_id", "version", "reasons", "decided_at")[:rejections]
    )
    places = record_versions_where([(r, v) for r, v, _reasons, _at in rejected])
    for record_id, version, reasons, decided_at in rejected:
        class_id, name = places.get((record_id, version), (None, ""))
        summary.rejections.append(
            Rejection(
                record_id, version, rejection_text(reasons), decided_at, class_id=class_id, student_name=name
            )
        )
    return summary


# --- The outbox, for the Department's operators ---------------------------------------------------

# Not yet with the Ministry: the age of the oldest of these is the queue's delay.
UNDELIVERED = (
    OutboxState.WAITING_PERSONAL_ID,
    OutboxState.PENDING,
    OutboxState.SENDING,
)


@dataclass
class SchoolQueue:
    school: School
    by_state: dict[str, int]
    oldest_undelivered: dt.datetime | None

    def count(self, *states: str) -> int:
        return sum(self.by_state.get(s, 0) for s in states)

    @property
    def to_send(self) -> int:
        return self.count(OutboxState.PENDING, OutboxState.SENDING)

    @property
    def waiting_personal_id(self) -> int:
        return self.count(OutboxState.WAITING_PERSONAL_ID)

    @property
    def sent(self) -> int:
        return self.count(OutboxState.SENT)

    @property
    def acknowledged(self) -> int:
        return self.count(OutboxState.ACKNOWLEDGED)

    @property
    def rejected(self) -> int:
        return self.count(OutboxState.REJECTED)

    @property
    def dead(self) -> int:
        return self.count(OutboxState.DEAD)


@dataclass
class ProvinceForwarding:
    by_state: dict[str, int]
    schools: list[SchoolQueue]
    acknowledged_last_hour: int
    received_last_hour: int
    oldest_undelivered: dt.datetime | None
    last_errors: list[OutboxMessage]
    dead_letters: list[OutboxMessage]
    issued_in_force: int
    acknowledged_in_force: int

    @property
    def share_acknowledged(self) -> float | None:
        """The Ministry's figure: of the versions in force, the share its repository holds."""
        return self.acknowledged_in_force / self.issued_in_force if self.issued_in_force else None


def province_forwarding(
    *, now: dt.datetime, schools: int = 50, errors: int = 20, dead: int = 50
) -> ProvinceForwarding:
    """The operators' page in a fixed number of queries: the queue by state and by school (the
    `schools` with the most trouble first), throughput, delay, the latest errors, dead letters, and
    the share of versions in force that the Ministry has acknowledged."""
    by_state = dict(OutboxMessage.objects.values_list("state").annotate(n=Count("pk")).order_by())
    per_school: dict[int, dict[str, int]] = {}
    for school_id, state, n in (
        OutboxMessage.objects.values_list("school_id", "state").annotate(n=Count("pk")).order_by()
    ):
        per_school.setdefault(school_id, {})[state] = n
    oldest = dict(
        OutboxMessage.objects.filter(state__in=UNDELIVERED)
        .values_list("school_id")
        .annotate(oldest=Min("created_at"))
        .order_by()
    )

    def trouble(school_id: int) -> tuple:
        states = per_school[school_id]
        stuck = states.get(OutboxState.DEAD, 0) + states.get(OutboxState.REJECTED, 0)
        return (-stuck, oldest.get(school_id) or now, school_id)

    chosen = sorted(per_school, key=trouble)[:schools]
    names = School.objects.in_bulk(chosen)
    hour_ago = now - dt.timedelta(hours=1)
    in_force = IssuedRecord.objects.filter(status=IssuedRecordStatus.ISSUED)
    acknowledged = OutboxMessage.objects.filter(
        record_id=OuterRef("record_id"),
        version=OuterRef("version"),
        kind__in=[MessageKind.SUBMIT, MessageKind.REPLACE],
        state=OutboxState.ACKNOWLEDGED,
    )
    return ProvinceForwarding(
        by_state=by_state,
        schools=[SchoolQueue(names[pk], per_school[pk], oldest.get(pk)) for pk in chosen if pk in names],
        acknowledged_last_hour=OutboxMessage.objects.filter(
            state=OutboxState.ACKNOWLEDGED, decided_at__gte=hour_ago
        ).count(),
        received_last_hour=OutboxMessage.objects.filter(sent_at__gte=hour_ago).count(),
        oldest_undelivered=min(oldest.values(), default=None),
        last_errors=list(
            OutboxMessage.objects.select_related("school")
            .exclude(last_error="")
            .exclude(state=OutboxState.ACKNOWLEDGED)
            .defer("document")
            .order_by("-last_attempt_at", "-pk")[:errors]
        ),
        dead_letters=list(
            OutboxMessage.objects.select_related("school")
            .filter(state=OutboxState.DEAD)
            .defer("document")
            .order_by("-last_attempt_at", "-pk")[:dead]
        ),
        issued_in_force=in_force.count(),
        acknowledged_in_force=in_force.filter(Exists(acknowledged)).count(),
    )


# --- Progress (portal.SchoolProgress): this app's part -----------------------------------------

PROGRESS_FIELDS = ("rejections",)
# A rejection that came without a coded reason.
UNCODED = "uncoded"


def progress_counts(school: School, school_year: str) -> dict[str, dict[str, int]]:
    """This app's counter of the school's progress row for one school year (one query of public
    tables): the records rejected by the Ministry, by coded reason. A record counts once per
    code, and only while the rejected version is the one in force (the index says "issued")."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT coalesce(reason.value ->> 'code', %s), count(DISTINCT m.id)
              FROM {OutboxMessage._meta.db_table} m
              JOIN {IssuedRecord._meta.db_table} i ON i.record_id = m.record_id AND i.version = m.version
              LEFT JOIN LATERAL jsonb_array_elements(m.reasons) AS reason(value) ON true
             WHERE m.school_id = %s AND m.state = %s AND i.school_year = %s AND i.status = %s
             GROUP BY 1
            """,  # noqa: S608 -- table names are ours
            [UNCODED, school.pk, OutboxState.REJECTED, school_year, IssuedRecordStatus.ISSUED],
        )
        return {"rejections": {code: n for code, n in cursor.fetchall()}}
