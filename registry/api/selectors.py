"""Reads of the partner API (style.md: selectors): keys by their prefix, a person's issued records,
a record version's signed XML and PDF from the school's own schema.

The records are found in the public index (portal.IssuedRecord) by the keyed hash of the personal
ID (portal.selectors.personal_id_digest): the number itself is never stored nor compared. The XML
and PDF are read from the school's schema through transcripts' services (the same path as a
copy handed out to a person), and the XML must still hash to what the index says was issued.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from django.db.models import QuerySet

from portal.models import IssuedRecord
from portal.selectors import personal_id_digest
from registry.verification import issued_xml
from transcripts.models import YearRecord
from transcripts.records.selectors import year_record_pdf_bytes, year_record_xml_copy_bytes

from ..models_api import PartnerKey
from .services import KEY_MARK, PREFIX_LENGTH, key_digest

log = logging.getLogger(__name__)

# hbk_ + 8 prefix symbols + _ + 43 symbols of URL-safe base64 (services.partner_key_issue).
KEY_PATTERN = re.compile(rf"^{KEY_MARK}([0-9a-z]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})$")
PERSONAL_ID_PATTERN = re.compile(r"^[0-9]{12}$")
_NO_DIGEST = "0" * 64


def key_prefix_of(raw: str) -> str:
    """The prefix of what looks like one of our keys ('' otherwise): for the log, never the secret."""
    found = KEY_PATTERN.match(raw or "")
    return found.group(1) if found else ""


def partner_key_find(raw: str) -> PartnerKey | None:
    """The key row (with its client) whose secret this is, or None: malformed, unknown, wrong secret.

    Usability (revoked, expired, client inactive) is the caller's question. The digest is compared
    in constant time even when the prefix is unknown, so timing says nothing of which prefixes exist.
    """
    found = KEY_PATTERN.match(raw or "")
    if not found:
        return None
    prefix, secret = found.groups()
    key = PartnerKey.objects.select_related("client").filter(prefix=prefix).first()
    same = hmac.compare_digest(key.digest if key else _NO_DIGEST, key_digest(secret))
    return key if key is not None and same else None


def personal_id_valid(personal_id: str) -> bool:
    """A citizen's personal ID: exactly 12 ASCII digits."""
    return bool(PERSONAL_ID_PATTERN.match(personal_id or ""))


def issued_records_of(*, personal_id: str) -> QuerySet[IssuedRecord]:
    """Every issued version (current, superseded, revoked) of the person with this personal ID."""
    return (
        IssuedRecord.objects.select_related("school")
        .filter(personal_id_digest=personal_id_digest(personal_id))
        .order_by("school_year", "record_id", "version")
    )


def issued_record_of(*, personal_id: str, record_id: str, version: int) -> IssuedRecord | None:
    """One issued version, if it belongs to the person with this personal ID (None otherwise)."""
    if not record_id or len(record_id) > 64 or "\x00" in record_id or not 0 < version < 2**31:
        return None
    return issued_records_of(personal_id=personal_id).filter(record_id=record_id, version=version).first()


def issued_pdf(entry: IssuedRecord) -> bytes | None:
    """The version's stored PDF/A-3b from the school's schema, or None (not rendered yet); read from
    the documents storage and checked against its SHA-256 (DocumentUnavailable otherwise)."""
    with entry.school:
        row = YearRecord.objects.filter(record_id=entry.record_id, version=entry.version).first()
        return year_record_pdf_bytes(row) if row is not None else None


def issued_xml_copy(entry: IssuedRecord) -> bytes | None:
    """The version's issued XML as handed out: its stored copy (checked against its SHA-256, and
    that against the index's), or, before its copy is stored, the school's own document
    (registry.verification.issued_xml: None when missing or not the issued bytes)."""
    with entry.school:
        row = YearRecord.objects.filter(record_id=entry.record_id, version=entry.version).first()
        copy = year_record_xml_copy_bytes(row) if row is not None else None
    if copy is None:
        return issued_xml(entry)
    if hashlib.sha256(copy).hexdigest() != entry.sha256:  # the database's guard says it cannot be
        log.error("Issued record %s v%s: its stored XML is not indexed", entry.record_id, entry.version)
        return None
    return copy
