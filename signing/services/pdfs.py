"""The second phase of a seal batch: the PDF of every record it issued, sealed as a PDF (issue 13).

When a seal batch has made its XML signatures (the records are issued), `batch_pdfs_seal` renders
the PDF of each record it sealed that has none yet (transcripts.records.pdf, with the signers'
marks) and signs it with the same key, the one the clerk unlocked for the batch (PAdES with a
timestamp and the validation data, signing.pades), before the PDF's row is created: the stored
PDF is the sealed one from the start and never changes. The transcripts PDF task leaves these
records alone (transcripts.records.pdf.year_record_pdfs_render skips records sealed by a batch).

Each record is rendered and sealed outside any transaction, then stored with its audit row in one
short transaction that also completes its row of PDFs due (portal.PdfDue; issue 15), the lease
renewed before each, as the item loop does. A retryable failure of the key's service or of the TSA
(BackendError.retryable) is raised: the runner pauses the batch as for an item, and the resume
sweep runs the batch again later: no item is pending then, so only the PDFs still missing are
made. A worker that dies leaves the batch to the sweep the same way. A permanent failure for one
record (its key refused, its certificate revoked meanwhile, the seal refused by the TSA) stores
its PDF unsealed (with the marks), logged and audited: the record is never left without its PDF.

A CSC (remote) seal authorises the batch's signatures up front: a seal batch makes two per record
(the XML and the PDF), signing.services.batches asks for that many.
"""

from __future__ import annotations

import datetime as dt
import logging

from cryptography.x509.oid import NameOID
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.services import audit_record, connection_tenant_reset, connection_tenant_set
from transcripts.models import YearRecord
from transcripts.pdf.services import RenderedPdf, SealedPdf, year_record_pdf_render

from .. import trust
from ..backends import BackendError, LoadedKey
from ..models import BatchState, ItemState, SigningBatch, SigningStep
from ..pades import pdf_seal
from .certificates import certificate_refusal

log = logging.getLogger(__name__)


def _renew(batch_pk: int, worker: str) -> bool:
    """Extend the lease (as signing.services.runner does); False when the batch is no longer ours."""
    seconds = int(getattr(settings, "HOCBA_SIGNING_LEASE_SECONDS", 60))
    return bool(
        SigningBatch.objects.filter(pk=batch_pk, lease_owner=worker, state=BatchState.RUNNING).update(
            lease_until=timezone.now() + dt.timedelta(seconds=seconds)
        )
    )


def seal_names(key: LoadedKey) -> tuple[str, str]:
    """The seal's name and its "Chức vụ/Đơn vị" line from its certificate: CN, then T or O."""
    subject = key.cert.subject

    def first(oid) -> str:
        values = subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    name = first(NameOID.COMMON_NAME) or first(NameOID.ORGANIZATION_NAME)
    return name, first(NameOID.TITLE) or first(NameOID.ORGANIZATION_NAME) or name


def batch_pdfs_seal(batch: SigningBatch, key: LoadedKey) -> str | None:
    """Seal the PDFs of the records this seal batch issued that have no PDF yet (the batch's
    second phase, after its items). None when done (or not a seal batch), "lease lost" when the
    batch is no longer this worker's; raises a retryable BackendError to pause the batch."""
    if batch.step != SigningStep.SEAL:
        return None
    worker = batch.lease_owner
    record_pks = list(
        batch.items.filter(state=ItemState.DONE).order_by("position").values_list("record_pk", flat=True)
    )
    if not record_pks:
        return None
    name, title = seal_names(key)
    connection_tenant_set(batch.school)
    try:
        missing = list(
            YearRecord.objects.filter(pk__in=record_pks, pdf__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for record_pk in missing:
            if not _renew(batch.pk, worker):
                return "lease lost"
            _record_pdf_seal(batch, record_pk, key, name, title)
    finally:
        connection_tenant_reset()
    return None


def _record_pdf_seal(batch: SigningBatch, record_pk: int, key: LoadedKey, name: str, title: str) -> None:
    """One record's PDF, sealed, stored in its own transaction (unsealed after a permanent failure)."""

    def seal(rendered: RenderedPdf) -> SealedPdf:
        if rendered.seal_box is None:  # year_record_pdf_render checks it first
            raise BackendError("no_seal_block", "The form has no seal's block")
        refusal = certificate_refusal(key.cert, key.chain)  # revoked or expired since the items
        if refusal:
            raise BackendError("certificate_refused", refusal)
        at = trust.now()
        pdf = pdf_seal(
            rendered.pdf,
            key=key.key,
            cert=key.cert,
            chain=key.chain,
            signer_name=name,
            signer_title=title,
            field_box=rendered.seal_box,
            at=at,
        )
        return SealedPdf(pdf=pdf, signer=name, at=at)

    try:  # rendered and sealed outside any transaction; stored with its audit row in a short one
        year_record_pdf_render(
            record_id=record_pk, seal=seal, on_stored=lambda row: _audit(batch, row, sealed=True, reason="")
        )
        return
    except BackendError as error:
        if error.retryable:
            raise
        reason = str(error)
    except Exception as error:  # one record's failure never stops the batch
        log.exception("Signing batch %s: the PDF of record %s could not be sealed", batch.pk, record_pk)
        reason = str(error)
    log.warning("Signing batch %s: the PDF of record %s is stored unsealed: %s", batch.pk, record_pk, reason)
    try:
        year_record_pdf_render(
            record_id=record_pk, on_stored=lambda row: _audit(batch, row, sealed=False, reason=reason)
        )
    except Exception:  # never stops the batch: the missing-PDF sweep tries the record again later
        log.exception("Signing batch %s: the PDF of record %s could not be rendered", batch.pk, record_pk)


def _audit(batch: SigningBatch, row, *, sealed: bool, reason: str) -> None:
    record = row.record
    if sealed:
        summary = _("PDF of year record %(record)s v%(version)d sealed by %(signer)s") % {
            "record": record.record_id,
            "version": record.version,
            "signer": row.sealed_by,
        }
    else:
        summary = _("PDF of year record %(record)s v%(version)d stored without the seal: %(reason)s") % {
            "record": record.record_id,
            "version": record.version,
            "reason": reason,
        }
    audit_record(
        actor=batch.signer,
        action=AuditAction.YEAR_RECORD_SIGNED,
        obj=record,
        summary=summary,
        changes={
            "pdf_sha256": row.sha256,
            "pdf_sealed": sealed,
            "batch": batch.pk,
            **({"reason": reason} if reason else {}),
        },
        school=batch.school,
    )
