"""Reads of the public index of issued records (style.md: selectors).

The index rows are written by transcripts through portal.services when a version is issued,
superseded or revoked; the tables stay in portal for now (moving them here is a later step).
"""

from __future__ import annotations

from portal.models import IssuedRecord


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
