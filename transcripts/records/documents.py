"""A year record version's documents written to the storage (transcripts.records.storage): its
rendered PDF, and the issued XML it embeds as the version's download copy.

Kept apart from the storage module itself, which knows nothing of records (the models read their
bytes through it).
"""

from __future__ import annotations

import hashlib

from portal.selectors import connection_schema_name
from transcripts.choices import SignatureStep, signature_position
from transcripts.models import YearRecord, YearRecordSignature, YearRecordXml

from .storage import StoredDocument, document_name, document_put

SEAL_POSITION = signature_position(SignatureStep.SEAL)


def record_document_name(record: YearRecord, *, sha256: str, kind: str) -> str:
    """The name of this record version's document in the current school's storage space."""
    return document_name(
        schema=connection_schema_name(),
        record_id=record.record_id,
        version=record.version,
        sha256=sha256,
        kind=kind,
    )


def year_record_documents_store(record: YearRecord, *, pdf: bytes, xml: bytes) -> StoredDocument:
    """Store a record version's rendered PDF, and the issued XML it embeds as the version's
    download copy (YearRecordXml, once); return the PDF's StoredDocument for its row.

    Called by the renderer (transcripts.records.pdf) inside its transaction, the record's row
    locked, in the school's schema. The XML copy's row is written here; the PDF's by the caller.
    """
    stored = document_put(
        record_document_name(record, sha256=hashlib.sha256(pdf).hexdigest(), kind="pdf"), pdf
    )
    sealed = YearRecordSignature.objects.filter(record=record, position=SEAL_POSITION).exists()
    # Only a sealed version's document is a download copy (the database checks it is the seal's).
    if sealed and not YearRecordXml.objects.filter(record=record).exists():
        copy = document_put(
            record_document_name(record, sha256=hashlib.sha256(xml).hexdigest(), kind="xml"), xml
        )
        YearRecordXml.objects.create(record=record, name=copy.name, size=copy.size, sha256=copy.sha256)
    return stored
