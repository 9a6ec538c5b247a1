import os
import socket

from celery import shared_task

from transcripts.records import pdf


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(acks_late=True)
def year_record_pdf_render(record_id: int) -> int | None:
    """Render and store the PDF of one year record (transcripts.records.pdf.year_record_pdf_job);
    returns the PDF row's id, or None when the record was not this worker's to render (another
    worker holds its lease, it is not due) or its render failed (recorded on its due row).

    The school travels with the task: config/celery.py's app is tenant_schemas_celery's CeleryApp,
    whose send_task (used by .delay() and .apply_async()) adds a `_schema_name` message header with
    the sender's connection.schema_name, unless the caller already gave one; on the worker, its
    task_prerun handler reads the header and calls connection.set_tenant() on that school before
    the task runs (task_postrun switches back). So either call `.delay(record_id)` inside the
    school's schema (`with school:`), or anywhere with the header given explicitly:
    `year_record_pdf_render.apply_async(args=[record_id], headers={"_schema_name": school.schema_name})`.
    A task sent from the public schema has no school and fails (the table is not there).

    The record's due row (portal.PdfDue), not the message, decides who renders: a duplicate
    delivery finds the lease held and returns; a worker that dies mid-render lets the lease run out
    and the sweep queues the record again. Late ack (and reject on worker loss, settings) as well.
    """
    return pdf.year_record_pdf_job(record_id=record_id, worker=_worker_id())


@shared_task
def year_record_pdfs_missing() -> int:
    """Beat: queue the PDFs due that no message is on its way for and no worker holds
    (transcripts.records.pdf, from the public table portal.PdfDue alone)."""
    return sum(len(pks) for pks in pdf.year_record_pdfs_missing().values())
