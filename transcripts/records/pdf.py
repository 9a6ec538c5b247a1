"""The year record's PDF, rendered once and stored: what every download of the record serves.

`year_record_pdf_render` renders a record version from its stored XML (parsed back into the
document's dataclasses, so the PDF shows exactly what the XML says, and embeds those very bytes)
and stores the PDF with its SHA-256. A record that already has its PDF is never rendered again,
so a copy handed out today is byte-identical to one handed out next year, whatever WeasyPrint or
the form's template have become since.

Who renders it (issue 13, "the PDF sealed as a PDF"):

- a record issued by a seal batch gets its PDF from that batch, sealed: after the batch's XML
  signatures, the batch (signing.services.pdfs) calls `year_record_pdf_render(record_id=...,
  seal=...)`, whose `seal` callable signs the rendered PDF with the seal's key (PAdES,
  signing.pades; transcripts never imports signing) before the row is created;
- any other issued record (sealed outside a batch) gets it from a Celery task (transcripts.tasks,
  on the PDF queue) queued when it is issued: rendered with the signers' marks, without a PDF
  signature;
- the missing-PDF sweep queues the task for what has none: a batch-sealed record only once the
  batch has had HOCBA_PDF_SEAL_GRACE_SECONDS to seal it (then unsealed, the fallback).

What is due is a fact in the public schema (issue 15, portal.PdfDue, written through
portal.jobs.services only): a row per record written in the transaction that issues it, marked
queued when its message is sent, held by a worker's lease while it renders, deleted in the short
transaction that stores the PDF. The sweep reads that table alone; the render runs outside any
lock or transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import weasyprint
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.jobs.services import pdf_due_add, pdf_due_claim, pdf_due_done, pdf_due_failed, pdf_due_take
from portal.models import IssuedRecord
from portal.selectors import connection_schema_name
from transcripts.document import year_record_parse
from transcripts.models import YearRecord, YearRecordPdf, YearRecordSignature
from transcripts.pdf import RenderedPdf, year_record_pdf, year_record_pdf_rendered

from .documents import year_record_documents_store

log = logging.getLogger(__name__)

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
RENDERER = f"weasyprint {weasyprint.__version__}"
SEAL_POSITION = 3  # the seal's signature (transcripts.choices.signature_position("seal"))


@dataclass(frozen=True)
class SealedPdf:
    """What a seal callable gives back: the signed PDF, who sealed it (the certificate's name), when."""

    pdf: bytes
    signer: str
    at: dt.datetime


# seal(rendered) -> SealedPdf: signs rendered.pdf, its stamp on rendered.seal_box (signing.pades).
Sealer = Callable[[RenderedPdf], SealedPdf]


def seal_grace_seconds() -> int:
    """How long the missing-PDF sweep leaves a batch-sealed record to its batch (3 hours)."""
    return int(getattr(settings, "HOCBA_PDF_SEAL_GRACE_SECONDS", 3 * 3600))


def pdf_queue() -> str:
    """The Celery queue of the render tasks (HOCBA_PDF_QUEUE, "pdf"): workers of its own."""
    return str(getattr(settings, "HOCBA_PDF_QUEUE", "pdf"))


def lease_seconds() -> int:
    """How long a worker holds a record's due row while it renders (HOCBA_PDF_LEASE_SECONDS)."""
    return int(getattr(settings, "HOCBA_PDF_LEASE_SECONDS", 300))


def queued_seconds() -> int:
    """How long a queued record waits for its message before the sweep queues it again
    (HOCBA_PDF_QUEUED_SECONDS: above the longest backlog the PDF workers are expected to have)."""
    return int(getattr(settings, "HOCBA_PDF_QUEUED_SECONDS", 3600))


def sweep_limit() -> int:
    """The most records one sweep queues (HOCBA_PDF_SWEEP_LIMIT)."""
    return int(getattr(settings, "HOCBA_PDF_SWEEP_LIMIT", 5000))


def verify_url_for(record_id: str, version: int, *, code: str) -> str:
    """The public verification page of a record version, with its code (the URL in the PDF's QR code).

    `record_id` is the record's stable id (madinhdanhhocba), not the row's primary key; `code` is
    its verification code as printed (IssuedRecord.verification_code_display): without it the page
    shows nothing of the record (issue 9, finding 7). The base is settings.HOCBA_PUBLIC_URL, the
    portal's public address (the local one when unset).
    """
    base = getattr(settings, "HOCBA_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/")
    return f"{base}/tra-cuu/{quote(record_id, safe='')}/v{version}/?code={quote(code, safe='-')}"


def year_record_pdf_render(
    *, record_id: int, seal: Sealer | None = None, on_stored: Callable[[YearRecordPdf], None] | None = None
) -> YearRecordPdf:
    """Render and store the PDF of the year record with primary key `record_id`; return the row.

    With `seal`, the rendered PDF is sealed by it before it is stored (`sealed`, `sealed_by`,
    `sealed_at`); what `seal` raises is raised and nothing is stored. `on_stored(row)` is called
    in the transaction that stores a new row (the seal batch's audit row commits with it).

    The render runs outside any transaction and any lock (issue 15: a render held the record's
    row lock and a transaction open for its whole length). Then one short transaction locks the
    record, checks it has no PDF yet, stores it and completes its row of PDFs due
    (portal.PdfDue). Idempotent: a record that has its PDF gets it back, not stored again (sealed
    or not); two renderings of the same record at once (a retry, a duplicate message, the batch
    and the task) store one PDF: the second finds the first's under the lock and drops its own.
    Who renders is decided before, by the lease on the due row (year_record_pdf_job).
    """
    existing = YearRecordPdf.objects.filter(record_id=record_id).first()
    if existing is not None:
        pdf_due_done(schema_name=connection_schema_name(), record_pk=record_id)
        return existing
    record = YearRecord.objects.get(pk=record_id)
    from transcripts.records.services import year_record_document

    # The verification code printed on the PDF is the index row's (made when the record was
    # issued): a record not in the index has none, and gets no PDF (it would be stored for good).
    entry = IssuedRecord.objects.filter(record_id=record.record_id, version=record.version).first()
    if entry is None:
        raise ValueError(
            f"Year record {record.record_id} v{record.version} is not in the public index: "
            "its PDF is made once it is issued."
        )
    xml = year_record_document(record)  # as issued: the sealed document (immutable from then on)
    code = entry.verification_code_display
    url = verify_url_for(record.record_id, record.version, code=code)
    sealed: SealedPdf | None = None
    if seal is None:
        pdf = year_record_pdf(year_record_parse(xml), xml=xml, verify_url=url, verification_code=code)
    else:
        rendered = year_record_pdf_rendered(
            year_record_parse(xml), xml=xml, verify_url=url, verification_code=code
        )
        if rendered.seal_box is None:
            raise ValueError("The form has no seal's block: the PDF cannot be sealed")
        sealed = seal(rendered)
        pdf = sealed.pdf
    with transaction.atomic():
        record = YearRecord.objects.select_for_update(no_key=True).get(pk=record_id)
        row = YearRecordPdf.objects.filter(record=record).first()
        if row is None:
            row = _pdf_store(record, pdf=pdf, xml=xml, sealed=sealed)
            if on_stored is not None:
                on_stored(row)
        pdf_due_done(schema_name=connection_schema_name(), record_pk=record_id)
    return row


def _pdf_store(record: YearRecord, *, pdf: bytes, xml: bytes, sealed: SealedPdf | None) -> YearRecordPdf:
    """Store the PDF's row (the caller holds the record's lock and has checked it has none)."""
    # The bytes go to the documents storage before the row that names them (a row never names a
    # missing object; an object whose row then rolls back is harmless: write-once, same name).
    stored = year_record_documents_store(record, pdf=pdf, xml=xml)
    return YearRecordPdf.objects.create(
        record=record,
        name=stored.name,
        size=stored.size,
        sha256=stored.sha256,
        rendered_at=timezone.now(),
        renderer=RENDERER,
        sealed=sealed is not None,
        sealed_by=sealed.signer if sealed is not None else "",
        sealed_at=sealed.at if sealed is not None else None,
    )


def year_record_pdfs_render(record_pks: list[int]) -> list[int]:
    """List these records' PDFs as due (those without one yet) and queue their rendering once
    committed. Call it in the transaction that issues them, in the school's schema.

    The PDF embeds the issued document. A record sealed by a signing batch (its seal signature has
    a batch item) is left to that batch, which renders and seals its PDF (signing.services.pdfs): a
    task rendering it first would store an unsealed PDF for good; its due row waits
    seal_grace_seconds() for the batch, then the sweep queues it (unsealed, the fallback). The
    others are marked queued and their messages sent after the commit, with the school's schema
    taken now (tenant_schemas_celery's header), so they reach the right school even if the
    connection has moved to another schema by then. Returns the primary keys of the records queued.
    """
    sealed_by_batch = YearRecordSignature.objects.filter(  # the seal itself by a batch, not an earlier step
        record=OuterRef("pk"), position=SEAL_POSITION, batch_item_pk__isnull=False
    )
    rows = list(
        YearRecord.objects.filter(pk__in=record_pks, pdf__isnull=True)
        .annotate(by_batch=Exists(sealed_by_batch))
        .order_by("pk")
        .values_list("pk", "by_batch")
    )
    schema = connection_schema_name()
    pdf_due_add(schema_name=schema, records=rows, queued_seconds=queued_seconds())
    ids = [pk for pk, by_batch in rows if not by_batch]
    if ids:
        transaction.on_commit(lambda: _send([(schema, pk) for pk in ids]))
    return ids


def year_record_pdfs_due_fill() -> int:
    """List as due, not queued, every issued version of the connection's school that has no PDF
    and no due row (records issued before the table of PDFs due existed, or whose render was lost
    then); the sweep queues them, HOCBA_PDF_SWEEP_LIMIT at a time. Returns how many were listed.
    `manage.py year_record_pdfs_due` runs it in every school, once, after the upgrade."""
    sealed_by_batch = YearRecordSignature.objects.filter(
        record=OuterRef("pk"), position=SEAL_POSITION, batch_item_pk__isnull=False
    )
    rows = list(
        YearRecord.objects.filter(status__in=ISSUED_LIKE, pdf__isnull=True)
        .annotate(by_batch=Exists(sealed_by_batch))
        .order_by("pk")
        .values_list("pk", "by_batch")
    )
    return pdf_due_add(schema_name=connection_schema_name(), records=rows, queued_seconds=None)


def _send(records: list[tuple[str, int]]) -> None:
    """One render message per (school schema, record primary key), on the PDF queue."""
    from transcripts.tasks import year_record_pdf_render as task

    queue = pdf_queue()
    with task.app.producer_or_acquire() as producer:  # one broker connection for them all
        for schema, pk in records:
            task.apply_async(args=[pk], headers={"_schema_name": schema}, queue=queue, producer=producer)


# Issued versions whose PDF should exist (what the download page calls issued).
ISSUED_LIKE = ("issued", "queued", "acknowledged", "rejected", "superseded", "revoked")


def year_record_pdfs_missing(*, limit: int | None = None) -> dict[str, list[int]]:
    """The sweep (Celery beat): queue the render of every PDF due that no message is on its way
    for and no worker holds, at most `limit` (HOCBA_PDF_SWEEP_LIMIT); returns {school code: record
    primary keys queued}.

    It reads the public table of PDFs due only (portal.PdfDue), never a school's schema, and marks
    what it queues in the statement that selects it (for HOCBA_PDF_QUEUED_SECONDS): ten sweeps in
    a row queue a record once, however long the broker's backlog. What it finds: a message lost
    (its mark ran out), a worker killed mid-render (its lease ran out), a render that failed (its
    back-off is over), a batch-sealed record the batch did not render within seal_grace_seconds().
    """
    taken = pdf_due_take(
        limit=limit if limit is not None else sweep_limit(),
        queued_seconds=queued_seconds(),
        seal_grace_seconds=seal_grace_seconds(),
    )
    if taken:
        transaction.on_commit(lambda: _send([(t.schema_name, t.record_pk) for t in taken]))
    queued: dict[str, list[int]] = {}
    for t in taken:
        queued.setdefault(t.school_code, []).append(t.record_pk)
    return {code: sorted(pks) for code, pks in sorted(queued.items())}


def year_record_pdf_job(*, record_id: int, worker: str) -> int | None:
    """The render task's body, in the record's school's schema: claim the record's due row (a
    lease of HOCBA_PDF_LEASE_SECONDS), render and store its PDF; returns the PDF row's id, or None
    when another worker holds it, it is not due, or the render failed.

    A render that raises is recorded on the due row (attempts + 1, the error, due again after a
    back-off: portal.jobs.services.pdf_due_failed) and logged; the sweep queues it again then. A
    worker killed mid-render leaves its lease to run out; the sweep queues the record again."""
    schema = connection_schema_name()
    claimed = pdf_due_claim(
        schema_name=schema,
        record_pk=record_id,
        worker=worker,
        lease_seconds=lease_seconds(),
        seal_grace_seconds=seal_grace_seconds(),
    )
    if not claimed:
        return None
    try:
        return year_record_pdf_render(record_id=record_id).pk
    except Exception as error:  # recorded and retried later; never lost
        log.exception("The PDF of year record %s (schema %s) failed", record_id, schema)
        pdf_due_failed(
            schema_name=schema, record_pk=record_id, worker=worker, error=f"{type(error).__name__}: {error}"
        )
        return None
