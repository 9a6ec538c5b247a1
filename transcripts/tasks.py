from celery import shared_task

from transcripts.records import pdf


@shared_task(acks_late=True)
def year_record_pdf_render(record_id: int) -> int:
    """Render and store the PDF of one year record (transcripts.records.pdf); returns the PDF row's id.

    The school travels with the task: config/celery.py's app is tenant_schemas_celery's CeleryApp,
    whose send_task (used by .delay() and .apply_async()) adds a `_schema_name` message header with
    the sender's connection.schema_name, unless the caller already gave one; on the worker, its
    task_prerun handler reads the header and calls connection.set_tenant() on that school before
    the task runs (task_postrun switches back). So either call `.delay(record_id)` inside the
    school's schema (`with school:`), or anywhere with the header given explicitly:
    `year_record_pdf_render.apply_async(args=[record_id], headers={"_schema_name": school.schema_name})`.
    A task sent from the public schema has no school and fails (the table is not there).

    Late ack (and reject on worker loss, settings): a worker that dies mid-render leaves the
    message to be delivered again; the service is idempotent, so a record is rendered once.
    """
    return pdf.year_record_pdf_render(record_id=record_id).pk


@shared_task
def year_record_pdfs_missing() -> int:
    """Beat: queue again the PDFs of recently issued records that have none (transcripts.records.pdf)."""
    return sum(len(pks) for pks in pdf.year_record_pdfs_missing().values())
