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
- any other issued record (sealed outside a batch) gets it from a Celery task (transcripts.tasks)
  queued when it is issued: rendered with the signers' marks, without a PDF signature;
- the missing-PDF sweep queues the task for what has none: a batch-sealed record only once the
  batch has had HOCBA_PDF_SEAL_GRACE_SECONDS to seal it (then unsealed, the fallback).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import weasyprint
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.models import IssuedRecord, School
from portal.selectors import connection_schema_name
from transcripts.document import year_record_parse
from transcripts.models import YearRecord, YearRecordPdf, YearRecordSignature
from transcripts.pdf import RenderedPdf, year_record_pdf, year_record_pdf_rendered

from .documents import year_record_documents_store

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


def verify_url_for(record_id: str, version: int, *, code: str) -> str:
    """The public verification page of a record version, with its code (the URL in the PDF's QR code).

    `record_id` is the record's stable id (madinhdanhhocba), not the row's primary key; `code` is
    its verification code as printed (IssuedRecord.verification_code_display): without it the page
    shows nothing of the record (issue 9, finding 7). The base is settings.HOCBA_PUBLIC_URL, the
    portal's public address (the local one when unset).
    """
    base = getattr(settings, "HOCBA_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/")
    return f"{base}/tra-cuu/{quote(record_id, safe='')}/v{version}/?code={quote(code, safe='-')}"


@transaction.atomic
def year_record_pdf_render(*, record_id: int, seal: Sealer | None = None) -> YearRecordPdf:
    """Render and store the PDF of the year record with primary key `record_id`; return the row.

    With `seal`, the rendered PDF is sealed by it before it is stored (`sealed`, `sealed_by`,
    `sealed_at`); what `seal` raises is raised and nothing is stored (its transaction rolls back).

    Idempotent: a record that has its PDF gets it back, not rendered again (sealed or not). The
    record's row is locked for the rendering, so two renderings of the same record (a retry, a
    double enqueue, the batch and the task) make it once: the second waits for the first and finds
    its PDF.
    """
    record = YearRecord.objects.select_for_update(no_key=True).get(pk=record_id)
    stored = YearRecordPdf.objects.filter(record=record).first()
    if stored is not None:
        return stored
    from transcripts.records.services import year_record_document

    # The verification code printed on the PDF is the index row's (made when the record was
    # issued): a record not in the index has none, and gets no PDF (it would be stored for good).
    entry = IssuedRecord.objects.filter(record_id=record.record_id, version=record.version).first()
    if entry is None:
        raise ValueError(
            f"Year record {record.record_id} v{record.version} is not in the public index: "
            "its PDF is made once it is issued."
        )
    xml = year_record_document(record)  # as issued: the sealed document
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


def year_record_pdfs_render(record_pks: list[int], *, batch_sealed: bool = False) -> list[int]:
    """Queue the rendering of these records (those without a PDF yet), once committed.

    Called when records are issued (sealed): the PDF embeds the issued document. A record sealed
    by a signing batch (its seal signature has a batch item) is left to that batch, which renders
    and seals its PDF (signing.services.pdfs): a task rendering it first would store an unsealed
    PDF for good. `batch_sealed=True` (the sweep's fallback) queues those too. Call it in the
    school's schema: the schema name is taken now and sent with each task, so the tasks reach the
    right school even if the connection has moved to another schema by the time the transaction
    commits. Returns the primary keys of the records queued.
    """
    from transcripts.tasks import year_record_pdf_render as task

    wanted = YearRecord.objects.filter(pk__in=record_pks, pdf__isnull=True)
    if not batch_sealed:  # the seal signature itself made by a batch (not an earlier step's)
        sealed_by_batch = YearRecordSignature.objects.filter(
            record=OuterRef("pk"), position=SEAL_POSITION, batch_item_pk__isnull=False
        )
        wanted = wanted.exclude(Exists(sealed_by_batch))
    ids = list(wanted.order_by("pk").values_list("pk", flat=True))
    headers = {"_schema_name": connection_schema_name()}  # tenant_schemas_celery's header

    def send() -> None:
        for pk in ids:
            task.apply_async(args=[pk], headers=headers)

    if ids:
        transaction.on_commit(send)
    return ids


# Issued versions whose PDF should exist: a render lost with a killed worker is queued again.
ISSUED_LIKE = ("issued", "queued", "acknowledged", "rejected", "superseded", "revoked")


def year_record_pdfs_missing(*, within_days: int = 14, grace_seconds: int = 300) -> dict[str, list[int]]:
    """Queue the PDF of every version issued in the last `within_days` that has none yet.

    The schools are found through the public index (only those that issued something lately are
    visited, not a province's thousand schemas); a version issued less than `grace_seconds` ago is
    left to the task queued when it was issued, one sealed by a signing batch less than
    seal_grace_seconds() ago to its batch (which seals its PDF; after that, a batch that gave up
    or lost it, the PDF is rendered unsealed). Returns {school code: record primary keys queued}.
    """
    now = timezone.now()
    school_ids = (
        IssuedRecord.objects.filter(issued_at__gte=now - dt.timedelta(days=within_days))
        .values_list("school_id", flat=True)
        .distinct()
    )
    queued: dict[str, list[int]] = {}
    for school in School.objects.filter(pk__in=list(school_ids)).order_by("code"):
        with school:
            missing = YearRecord.objects.filter(status__in=ISSUED_LIKE, pdf__isnull=True)
            by_task = missing.filter(
                signatures__position=SEAL_POSITION,
                signatures__batch_item_pk__isnull=True,
                signatures__signed_at__lt=now - dt.timedelta(seconds=grace_seconds),
            )
            batch_grace = dt.timedelta(seconds=max(grace_seconds, seal_grace_seconds()))
            by_batch = missing.filter(
                signatures__position=SEAL_POSITION,
                signatures__batch_item_pk__isnull=False,
                signatures__signed_at__lt=now - batch_grace,
            )
            pks = sorted({*by_task.values_list("pk", flat=True), *by_batch.values_list("pk", flat=True)})
            if pks:
                queued[school.code] = year_record_pdfs_render(pks, batch_sealed=True)
    return queued
