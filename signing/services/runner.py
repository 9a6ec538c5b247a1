"""Running a signing batch (the Celery job's body): the lease, the items in chunks, the resume
sweep, and the queue the jobs go to.

The pending items are signed HOCBA_SIGNING_CHUNK at a time (a class is one chunk): one transaction
per chunk locks its items, checks the certificate, and hands the records to
transcripts.records.services.year_records_sign, which locks and checks each record, signs all the
chunk's documents with one signing.profile.sign_year_records call (one call to the key: one
signHash for a remote key; one round of timestamps; the seal's long-term validation data), and
stores every signature; each item is marked done or failed in that same transaction, so each
record's outcome is recorded exactly once. A record that fails its own checks, its signature or
its writes fails alone (its writes are undone by a savepoint) and the chunk goes on.

An item fails only for its own reason (its record's state, its signature). When the key's service
or device, or the TSA, fails in a way worth retrying (a BackendError with `retryable`: the remote
signing service unreachable, failing, busy), the batch pauses instead: the chunk in hand is rolled
back, `next_attempt_at` is set (capped exponential back-off with jitter: about 1, 2, 4 ... 60 s),
the lease is released, and the sweep (or the wake-up message queued with a countdown) takes the
batch up again when it is due; the database, not the message, says when. After a pause the TSA
(if any) is asked for a timestamp before the key signs anything, and the first chunk is one item,
so a service that is still down costs a remote approval no signature, and one that fails again
at most one, not a chunk's.
Only after HOCBA_SIGNING_RETRY_ATTEMPTS consecutive retryable failures spanning more than
HOCBA_SIGNING_RETRY_GIVE_UP_SECONDS do the remaining items fail, with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.formats import moment_vi
from portal.permissions import forget_access
from portal.services import audit_record, connection_tenant_reset, connection_tenant_set
from transcripts.document import DocumentError
from transcripts.records.services import year_records_sign

from .. import keys, timestamps, trust
from ..backends import BackendError, KeyLoadError, LoadedKey
from ..longterm import signing_extras
from ..models import (
    BatchState,
    ItemState,
    SigningBatch,
    SigningBatchItem,
    SigningCertificate,
)
from ..profile import SigningError, sign_year_records
from .certificates import certificate_refusal, key_error_message, membership_ended_message
from .pdfs import batch_pdfs_seal

log = logging.getLogger(__name__)


RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


def lease_seconds() -> int:
    return int(getattr(settings, "HOCBA_SIGNING_LEASE_SECONDS", 60))


def retry_attempts() -> int:
    """Consecutive retryable failures before a batch may give up (with retry_give_up_seconds)."""
    return int(getattr(settings, "HOCBA_SIGNING_RETRY_ATTEMPTS", 8))


def retry_give_up_seconds() -> int:
    """How long a batch keeps retrying a failing service before its remaining items fail."""
    return int(getattr(settings, "HOCBA_SIGNING_RETRY_GIVE_UP_SECONDS", 900))


def retry_delay(failures: int) -> float:
    """Seconds to wait after the `failures`-th consecutive retryable failure: 1, 2, 4 ... capped at
    60, each drawn in [half, whole] of that (jitter: batches paused by one outage do not all
    come back in the same second)."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** max(0, min(failures, 30) - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def _due(now: dt.datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def _claim(batch_pk: int, worker: str) -> bool:
    now = timezone.now()
    return bool(
        SigningBatch.objects.filter(pk=batch_pk, state__in=[BatchState.QUEUED, BatchState.RUNNING])
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=worker))
        .filter(_due(now))
        .update(
            state=BatchState.RUNNING,
            lease_owner=worker,
            lease_until=now + dt.timedelta(seconds=lease_seconds()),
            enqueued_until=None,  # its message has arrived: from now on the lease says who holds it
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
    if isinstance(error, (SigningError, DocumentError)):
        return _("The record cannot be signed: %(detail)s") % {"detail": str(error)}
    return _("Unexpected error: %(detail)s") % {"detail": str(error)}


# What a record may fail for in the ordinary course (said to the signer; no traceback logged).
_KNOWN = (ValidationError, PermissionDenied, KeyLoadError, SigningError, DocumentError)


class _Paused(Exception):
    """The key's service failed in a way worth retrying: the item was rolled back, the batch pauses."""

    def __init__(self, error: BackendError):
        super().__init__(str(error))
        self.error = error


def chunk_size() -> int:
    """How many pending items a batch signs together (HOCBA_SIGNING_CHUNK)."""
    return max(1, int(getattr(settings, "HOCBA_SIGNING_CHUNK", 40)))


def _tsa_probe() -> None:
    """After a pause, ask the TSA (when one is configured) for a timestamp before the key signs
    anything: while it is still down the batch pauses again without spending a remote approval's
    signatures on records whose timestamps would fail (the chunk would roll back, but the service
    has counted its signHash). Raises the TSA's BackendError."""
    stamper = timestamps.timestamper()
    if stamper is not None:
        stamper.stamp(b"hocba: is the timestamping service back?")


def _sign_chunk(
    batch: SigningBatch, item_pks: list[int], key: LoadedKey, cert_facts: dict, now: dt.datetime | None = None
) -> int:
    """Sign a chunk of items in one transaction (the school's schema is active): lock the items
    still pending, check the certificate once, and let transcripts' year_records_sign lock and
    check each record, sign all their documents with one sign_year_records call (one call to the
    key, one round of timestamps) and store each signature; each item is marked done or failed
    with its reason in the same transaction as its record's signature, so it is signed once.

    A record that fails its own checks, its signature or its writes fails alone. A retryable
    failure of the key or the TSA raises _Paused (the whole chunk rolled back: it stays pending);
    any other failure of the chunk as a whole is tried again item by item, so that each item gets
    its own outcome. Returns how many items were signed."""
    try:
        with transaction.atomic():
            items = list(
                SigningBatchItem.objects.select_for_update()
                .filter(pk__in=item_pks, state=ItemState.PENDING)
                .order_by("position")
            )
            if not items:
                return 0  # done by an earlier run of this batch
            forget_access(batch.signer)  # roles are read again for every chunk
            # The signer's membership in the school ended (a contract teacher's last day passed
            # since the batch started): nothing more is signed with their key here, and the items
            # fail with the reason, not retried (the database refuses the same: migration 0003).
            deadline = items[0].sign_before
            if deadline is not None and (now or timezone.now()) >= deadline:
                raise ValidationError(membership_ended_message(deadline))
            certificate = SigningCertificate.objects.get(pk=batch.certificate_id)
            if certificate.removed_at is not None:
                raise ValidationError(_("The certificate was removed during the batch."))
            refusal = certificate_refusal(key.cert, key.chain)
            if refusal:
                raise ValidationError(refusal)
            # The TSA's timestamp on every signature and, at the seal, the validation data of all
            # the record's signatures (XAdES-T, LT: signing.longterm.signing_extras).
            extras = signing_extras(batch.step)

            def sign_many(documents: list[bytes]) -> list:
                return sign_year_records(
                    documents,
                    key=key.key,
                    cert=key.cert,
                    chain=key.chain,
                    role=batch.step,
                    **extras,
                )

            outcome = year_records_sign(
                actor=batch.signer,
                school=batch.school,
                record_pks=[item.record_pk for item in items],
                step=batch.step,
                sign_many=sign_many,
                batch_item_pks={item.record_pk: item.pk for item in items},
                **cert_facts,
            )
            now = timezone.now()
            done = [item.pk for item in items if item.record_pk in outcome.signed]
            SigningBatchItem.objects.filter(pk__in=done).update(
                state=ItemState.DONE, finished_at=now, attempts=F("attempts") + 1
            )
            for item in items:
                error = outcome.failed.get(item.record_pk)
                if error is None:
                    continue
                if not isinstance(error, _KNOWN):
                    log.error("Signing batch %s, item %s", batch.pk, item.pk, exc_info=error)
                item.state, item.reason, item.finished_at = ItemState.FAILED, _error_message(error), now
                item.attempts += 1
                item.save(update_fields=["state", "reason", "finished_at", "attempts"])
            return len(done)
    except BackendError as error:
        if error.retryable:
            raise _Paused(error) from error
        if len(item_pks) > 1:  # e.g. an approval short of the chunk: each item on its own
            return sum(_sign_chunk(batch, [pk], key, cert_facts, now) for pk in item_pks)
        _fail(item_pks[0], _error_message(error))
    except (ValidationError, PermissionDenied) as error:  # the certificate: every item alike
        for item_pk in item_pks:
            _fail(item_pk, _error_message(error))
    except Exception as error:  # one record's failure never stops the batch
        if len(item_pks) > 1:
            return sum(_sign_chunk(batch, [pk], key, cert_facts, now) for pk in item_pks)
        log.exception("Signing batch %s, item %s", batch.pk, item_pks[0])
        _fail(item_pks[0], _error_message(error))
    return 0


def signing_batch_run(*, batch_pk: int, worker: str, now: dt.datetime | None = None) -> str:
    """Sign the batch's pending items (the Celery task's body); returns what happened, for logs.

    `now` stands for the clock in the check of the signer's membership end (tests: a batch taken
    up by a worker after the signer's last day); the signatures themselves take the real time."""
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
    except BackendError as error:
        if error.retryable:
            return _pause(batch_pk, worker, error)
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
    recovering = batch.retry_count > 0
    if recovering and pending:
        try:
            _tsa_probe()
        except BackendError as error:
            if error.retryable:
                return _pause(batch_pk, worker, error)
    size = chunk_size()
    connection_tenant_set(school)
    try:
        at = 0
        while at < len(pending):
            if not _renew(batch_pk, worker):
                return "lease lost"
            # After a pause, one item first: a service that fails again costs one signature of
            # the approval, not a chunk's (a signHash that was answered before the TSA failed).
            chunk = pending[at : at + (1 if recovering else size)]
            try:
                _sign_chunk(batch, chunk, key, cert_facts, now)
            except _Paused as paused:
                connection_tenant_reset()
                return _pause(batch_pk, worker, paused.error)
            at += len(chunk)
            if recovering:  # the service answers again: the count of consecutive failures restarts
                SigningBatch.objects.filter(pk=batch_pk).update(
                    retry_count=0, retrying_since=None, next_attempt_at=None, retry_reason=""
                )
                recovering = False
    finally:
        connection_tenant_reset()
    try:  # a seal batch's second phase: the issued records' PDFs, sealed (signing.services.pdfs)
        sealed = batch_pdfs_seal(batch, key)
    except BackendError as error:  # retryable only (the TSA, the key's service): pause as for items
        return _pause(batch_pk, worker, error)
    return sealed or _finish(batch_pk, worker)


def _pause(batch_pk: int, worker: str, error: BackendError) -> str:
    """A retryable failure: pause the batch until `next_attempt_at` (lease released, a wake-up
    queued), or, after enough failures over long enough, fail what remains with the reason."""
    now = timezone.now()
    with transaction.atomic():
        batch = SigningBatch.objects.select_for_update().get(pk=batch_pk)
        if batch.state != BatchState.RUNNING or batch.lease_owner != worker:
            return "lease lost"
        failures = batch.retry_count + 1
        since = batch.retrying_since or now
        log.warning("Signing batch %s paused (failure %d since %s): %s", batch_pk, failures, since, error)
        give_up = failures >= retry_attempts() and (now - since).total_seconds() > retry_give_up_seconds()
        if not give_up:
            delay = retry_delay(failures)
            batch.state = BatchState.QUEUED
            batch.lease_owner, batch.lease_until = "", None
            batch.retry_count, batch.retrying_since = failures, since
            batch.next_attempt_at = now + dt.timedelta(seconds=delay)
            batch.retry_reason = key_error_message(error)
            batch.save(
                update_fields=[
                    "state",
                    "lease_owner",
                    "lease_until",
                    "retry_count",
                    "retrying_since",
                    "next_attempt_at",
                    "retry_reason",
                ]
            )
            # A wake-up only: whoever gets it claims the batch if the database says it is due.
            transaction.on_commit(lambda: signing_batch_enqueue(batch_pk, countdown=delay))
            return "paused"
        reason = _(
            "The signing service failed %(count)d times in a row since %(since)s; the remaining "
            "records were not signed: %(detail)s"
        ) % {
            "count": failures,
            "since": moment_vi(since),
            "detail": key_error_message(error),
        }
        SigningBatchItem.objects.filter(batch_id=batch_pk, state=ItemState.PENDING).update(
            state=ItemState.FAILED, reason=reason, finished_at=now
        )
        # Given up: a later "sign the failed records again" starts counting afresh.
        batch.retry_count, batch.retrying_since, batch.next_attempt_at = 0, None, None
        batch.retry_reason = reason
        batch.save(update_fields=["retry_count", "retrying_since", "next_attempt_at", "retry_reason"])
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


def enqueued_seconds() -> int:
    """How long a batch the resume sweep queued waits for its message before the sweep queues it
    again (HOCBA_SIGNING_ENQUEUED_SECONDS)."""
    return int(getattr(settings, "HOCBA_SIGNING_ENQUEUED_SECONDS", 300))


def signing_batches_resume() -> list[int]:
    """Queue again the batches no worker holds: queued or running with the lease run out, and
    paused batches whose next attempt is due; returns their primary keys.

    A batch it queues is marked `enqueued_until` (HOCBA_SIGNING_ENQUEUED_SECONDS) in the
    transaction that selects it (rows locked by another sweep are skipped), and is not queued
    again before then: the sweep runs every 15 s, and a batch whose message waits behind others
    got a new message at every sweep (issue 15). The worker's claim clears the mark."""
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            SigningBatch.objects.select_for_update(skip_locked=True)
            .filter(state__in=[BatchState.QUEUED, BatchState.RUNNING])
            .filter(_due(now))
            .filter(
                Q(lease_until__lt=now)
                | Q(lease_until__isnull=True, next_attempt_at__isnull=False)
                | Q(lease_until__isnull=True, confirmed_at__lt=now - dt.timedelta(seconds=30))
            )
            .filter(Q(enqueued_until__isnull=True) | Q(enqueued_until__lt=now))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if stale:
            SigningBatch.objects.filter(pk__in=stale).update(
                enqueued_until=now + dt.timedelta(seconds=enqueued_seconds())
            )
    for pk in stale:  # after the marks are committed (the beat task runs in autocommit)
        signing_batch_enqueue(pk)
    return stale


def signing_batch_enqueue(batch_pk: int, *, countdown: float | None = None) -> None:
    from ..tasks import signing_batch_run as task

    queue = getattr(settings, "HOCBA_SIGNING_QUEUE", "signing")
    task.apply_async(args=[batch_pk], headers={"_schema_name": "public"}, queue=queue, countdown=countdown)
