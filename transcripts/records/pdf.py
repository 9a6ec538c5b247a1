"""The year record's PDF, rendered once and stored: what every download of the record serves.

`year_record_pdf_render` renders a record version from its stored XML (parsed back into the
document's dataclasses, so the PDF shows exactly what the XML says, and embeds those very bytes)
and stores the PDF with its SHA-256. It runs in a Celery task (transcripts.tasks); a record that
already has its PDF is never rendered again, so a copy handed out today is byte-identical to one
handed out next year, whatever WeasyPrint or the form's template have become since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import quote

import weasyprint
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.models import IssuedRecord, School
from portal.selectors import connection_schema_name
from transcripts.document import year_record_parse
from transcripts.models import YearRecord, YearRecordPdf
from transcripts.pdf import year_record_pdf

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
RENDERER = f"weasyprint {weasyprint.__version__}"


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
def year_record_pdf_render(*, record_id: int) -> YearRecordPdf:
    """Render and store the PDF of the year record with primary key `record_id`; return the row.

    Idempotent: a record that has its PDF gets it back, not rendered again. The record's row is
    locked for the rendering, so two tasks for the same record (a retry, a double enqueue) render
    it once: the second waits for the first and finds its PDF.
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
    pdf = year_record_pdf(
        year_record_parse(xml),
        xml=xml,
        verify_url=verify_url_for(record.record_id, record.version, code=entry.verification_code_display),
        verification_code=entry.verification_code_display,
    )
    return YearRecordPdf.objects.create(
        record=record,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        rendered_at=timezone.now(),
        renderer=RENDERER,
    )


def year_record_pdfs_render(record_pks: list[int]) -> list[int]:
    """Queue the rendering of these records (those without a PDF yet), once committed.

    Called when records are issued (sealed): the PDF embeds the issued document. Call it in the
    school's schema: the schema name is taken now and sent with each task, so the tasks reach the
    right school even if the connection has moved to another schema by the time the transaction
    commits. Returns the primary keys of the records queued.
    """
    from transcripts.tasks import year_record_pdf_render as task

    ids = list(
        YearRecord.objects.filter(pk__in=record_pks, pdf__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
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
    left to the task queued when it was issued. Returns {school code: record primary keys queued}.
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
            pks = list(
                YearRecord.objects.filter(
                    status__in=ISSUED_LIKE,
                    pdf__isnull=True,
                    signatures__position=3,
                    signatures__signed_at__lt=now - dt.timedelta(seconds=grace_seconds),
                ).values_list("pk", flat=True)
            )
            if pks:
                queued[school.code] = year_record_pdfs_render(pks)
    return queued
