"""Reads of the registry (style.md: selectors): the public index of issued records, and the
outbox to the Ministry as a school and the Department's operators see it.

The index rows are written by transcripts through portal.services when a version is issued,
superseded or revoked (the index is portal's: transcripts reads it too, docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count

from portal.models import IssuedRecord, School
from transcripts.records.selectors import record_versions_where

from .choices import OutboxState
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
    """Counts by state (one query) and the latest rejections, each placed in its class (two more;
    the connection is on the school's schema)."""
    summary = SchoolForwarding(
        by_state=dict(
            OutboxMessage.objects.filter(school=school)
            .values_list("state")
            .annotate(n=Count("pk"))
            .order_by()
        )
    )
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
