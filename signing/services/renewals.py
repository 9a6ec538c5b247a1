"""Renewing issued records before their proof of time lapses (XAdES-LTA): the body of
`manage.py archive_timestamp` (and of the yearly reminder in docs/operations.md).

A record's timestamps can be relied on while their TSA's certificate is valid
(signing.longterm.proof_until). Before that ends, every signature of the record gets an archive
timestamp from the configured TSA over everything it is, with the CRLs as of now; the result is
stored as the record's next renewal (transcripts.records.services.year_record_renew, which locks
the record and audits), and the new proof lasts as long as the new TSA certificate.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from lxml import etree

from portal.models import School
from transcripts.models import YearRecord
from transcripts.records.services import year_record_archived_document, year_record_renew

from ..backends import BackendError
from ..longterm import add_archive_timestamps, proof_until, validation_data_current
from ..timestamps import timestamper

log = logging.getLogger(__name__)

ISSUED_LIKE = ("issued", "queued", "acknowledged", "rejected", "superseded", "revoked")


@dataclass
class RenewalOutcome:
    renewed: int = 0
    not_due: int = 0
    without_timestamp: int = 0  # baseline B: no timestamp to carry forward
    failed: dict[str, str] = field(default_factory=dict)  # "record id vN": why
    earliest_left: dt.datetime | None = None  # the earliest proof left unrenewed (not due yet)


def records_renew(
    school: School,
    *,
    due_within: dt.timedelta,
    force: bool = False,
    dry_run: bool = False,
    school_year: str | None = None,
    now: dt.datetime | None = None,
) -> RenewalOutcome:
    """Renew the school's issued records whose proof of time ends within `due_within` (all with
    `force`). Raises ValueError without a configured TSA."""
    stamper = timestamper()
    if stamper is None and not dry_run:
        raise ValueError("No timestamping service configured (HOCBA_TSA_URL)")
    current = now or dt.datetime.now(dt.UTC)
    outcome = RenewalOutcome()
    data = None
    with school:
        records = YearRecord.objects.filter(status__in=ISSUED_LIKE, signatures__position=3)
        if school_year:
            records = records.filter(enrolment__school_class__school_year__code=school_year)
        for record in records.order_by("pk").iterator():
            label = f"{record.record_id} v{record.version}"
            until = proof_until(etree.fromstring(year_record_archived_document(record)))
            if until is None:
                outcome.without_timestamp += 1
                continue
            if not force and until - current > due_within:
                outcome.not_due += 1
                outcome.earliest_left = (
                    until if outcome.earliest_left is None else min(outcome.earliest_left, until)
                )
                continue
            if dry_run:
                outcome.renewed += 1
                continue
            data = data or validation_data_current()

            def renew(document: bytes, data=data) -> tuple[bytes, dt.datetime | None]:
                root = etree.fromstring(document)
                add_archive_timestamps(root, timestamper=stamper, data=data)
                return etree.tostring(root, method="c14n"), proof_until(root)

            try:
                row = year_record_renew(school=school, record=record, renew=renew)
                log.info("Renewed %s (renewal %d)", label, row.sequence)
                outcome.renewed += 1
            except (ValidationError, ValueError) as error:
                outcome.failed[label] = str(error)
            except BackendError as error:  # the TSA: said per record, and a TSA that is down stops the school
                outcome.failed[label] = str(error)
                if error.retryable:
                    break
    return outcome
