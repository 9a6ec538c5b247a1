"""Running a signing batch (the Celery job's body): the lease, each item in its own transaction, the
resume sweep, and the queue the jobs go to."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.db import connection
from portal.permissions import forget_access
from portal.services import audit_record

from .. import keys, trust
from ..backends import KeyLoadError, LoadedKey
from ..models import (
    BatchState,
    ItemState,
    SigningBatch,
    SigningBatchItem,
    SigningCertificate,
)
from ..profile import SigningError, sign_year_record
from .certificates import certificate_refusal, key_error_message

log = logging.getLogger(__name__)


def lease_seconds() -> int:
    return int(getattr(settings, "HOCBA_SIGNING_LEASE_SECONDS", 60))


def _claim(batch_pk: int, worker: str) -> bool:
    now = timezone.now()
    return bool(
        SigningBatch.objects.filter(pk=batch_pk, state__in=[BatchState.QUEUED, BatchState.RUNNING])
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=worker))
        .update(
            state=BatchState.RUNNING,
            lease_owner=worker,
            lease_until=now + dt.timedelta(seconds=lease_seconds()),
        )
    )


def _renew(batch_pk: int, worker: str) -> bool:
    """Extend the lease; False when the batch is no longer ours (cancelled, or taken over)."""
    return bool(
        SigningBatch.objects.filter(pk=batch_pk, lease_owner=worker, state=BatchState.RUNNING).update(
            lease_until=timezone.now() + dt.timedelta(seconds=lease_seconds())
        )
    )


def _fail(item_pk: int, reason: str) -> None:
    SigningBatchItem.objects.filter(pk=item_pk, state=ItemState.PENDING).update(
        state=ItemState.FAILED, reason=reason, finished_at=timezone.now()
    )


def _error_message(error: Exception) -> str:
    if isinstance(error, (ValidationError, PermissionDenied)):
        return " ".join(getattr(error, "messages", None) or [str(error)])
    if isinstance(error, KeyLoadError):
        return key_error_message(error)
    if isinstance(error, SigningError):
        return _("The record cannot be signed: %(detail)s") % {"detail": str(error)}
    return _("Unexpected error: %(detail)s") % {"detail": str(error)}


def _sign_item(batch: SigningBatch, item_pk: int, key: LoadedKey, cert_facts: dict) -> None:
    """Sign one item in its own transaction (the school's schema is active)."""
    from transcripts.models import YearRecord
    from transcripts.records.services import year_record_sign

    try:
        with transaction.atomic():
            item = SigningBatchItem.objects.select_for_update().get(pk=item_pk)
            if item.state != ItemState.PENDING:
                return  # done by an earlier run of this batch
            item.attempts += 1
            record = YearRecord.objects.get(pk=item.record_pk)
            forget_access(batch.signer)  # roles are read again for every signature
            certificate = SigningCertificate.objects.get(pk=batch.certificate_id)
            if certificate.removed_at is not None:
                raise ValidationError(_("The certificate was removed during the batch."))
            refusal = certificate_refusal(key.cert, key.chain)
            if refusal:
                raise ValidationError(refusal)
            year_record_sign(
                actor=batch.signer,
                school=batch.school,
                record=record,
                step=batch.step,
                sign=lambda document: sign_year_record(
                    document, key=key.key, cert=key.cert, chain=key.chain, role=batch.step
                ),
                batch_item_pk=item.pk,
                **cert_facts,
            )
            item.state, item.finished_at = ItemState.DONE, timezone.now()
            item.save(update_fields=["state", "finished_at", "attempts"])
    except Exception as error:  # one record's failure never stops the batch
        if not isinstance(error, (ValidationError, PermissionDenied, KeyLoadError, SigningError)):
            log.exception("Signing batch %s, item %s", batch.pk, item_pk)
        _fail(item_pk, _error_message(error))


def signing_batch_run(*, batch_pk: int, worker: str) -> str:
    """Sign the batch's pending items (the Celery task's body); returns what happened, for logs."""
    if not _claim(batch_pk, worker):
        return "not claimed"
    batch = SigningBatch.objects.select_related("school", "signer", "certificate").get(pk=batch_pk)
    school = batch.school
    pending = list(
        batch.items.filter(state=ItemState.PENDING).order_by("position").values_list("pk", flat=True)
    )
    try:
        if batch.secret is None:
            raise KeyLoadError("no_secret", "The batch has no confirmation")
        if batch.secret_expires_at is not None and batch.secret_expires_at < timezone.now():
            raise KeyLoadError("sad_expired", "The remote signing authorisation has expired")
        key = keys.loaded_key(
            batch.certificate, trust.open_secret(batch.secret), expires_at=batch.secret_expires_at
        )
    except KeyLoadError as error:
        message = key_error_message(error)
        for item_pk in pending:
            _fail(item_pk, message)
        return _finish(batch_pk, worker)
    cert_facts = {
        "signer_name": batch.certificate.subject_name,
        "signer_title": batch.certificate.subject_title,
        "certificate_fingerprint": batch.certificate.fingerprint,
        "certificate_serial": batch.certificate.serial,
    }
    connection.set_tenant(school)
    try:
        for item_pk in pending:
            if not _renew(batch_pk, worker):
                return "lease lost"
            _sign_item(batch, item_pk, key, cert_facts)
    finally:
        connection.set_schema_to_public()
    return _finish(batch_pk, worker)


@transaction.atomic
def _finish(batch_pk: int, worker: str) -> str:
    batch = SigningBatch.objects.select_for_update().select_related("school", "signer").get(pk=batch_pk)
    if batch.state != BatchState.RUNNING or batch.lease_owner != worker:
        return "lease lost"
    if batch.items.filter(state=ItemState.PENDING).exists():
        return "pending"  # cannot happen after a full pass; the sweep takes it up again
    counts = batch.items.aggregate(
        done=Count("pk", filter=Q(state=ItemState.DONE)), failed=Count("pk", filter=Q(state=ItemState.FAILED))
    )
    batch.state, batch.secret, batch.finished_at = BatchState.DONE, None, timezone.now()
    batch.lease_owner, batch.lease_until = "", None
    batch.save(update_fields=["state", "secret", "finished_at", "lease_owner", "lease_until"])
    audit_record(
        actor=batch.signer,
        action=AuditAction.SIGNING_BATCH_FINISHED,
        obj=batch,
        summary=_("Signing batch %(id)d finished: %(done)d signed, %(failed)d failed")
        % {"id": batch.pk, **counts},
        changes=counts,
        school=batch.school,
    )
    return "done"


def signing_batches_resume() -> list[int]:
    """Queue again the batches no worker holds: queued or running with the lease run out."""
    now = timezone.now()
    stale = list(
        SigningBatch.objects.filter(state__in=[BatchState.QUEUED, BatchState.RUNNING])
        .filter(
            Q(lease_until__lt=now)
            | Q(lease_until__isnull=True, confirmed_at__lt=now - dt.timedelta(seconds=30))
        )
        .values_list("pk", flat=True)
    )
    for pk in stale:
        signing_batch_enqueue(pk)
    return stale


def signing_batch_enqueue(batch_pk: int) -> None:
    from ..tasks import signing_batch_run as task

    queue = getattr(settings, "HOCBA_SIGNING_QUEUE", "celery")
    task.apply_async(args=[batch_pk], headers={"_schema_name": "public"}, queue=queue)
