"""Reads of the public index of issued records (style.md: selectors).

Verifying a record (lookups by id and code, uploads) is registry.verification; the index rows are
written by transcripts through portal.index when a version is issued.
"""

from __future__ import annotations

from portal.models_verification import IssuedRecord


def issued_record_for(*, record_id: str, version: int) -> IssuedRecord | None:
    """The index row of one issued version, or None."""
    return IssuedRecord.objects.filter(record_id=record_id, version=version).first()
