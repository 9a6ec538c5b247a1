"""Signing batches on the signer's side: start, the one confirmation, cancel, sign the failures again."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import School, User
from portal.services import audit_record
from schools.models import SchoolClass
from transcripts.models import YearRecord
from transcripts.permissions import can_sign
from transcripts.records.services import SIGNING_STEPS

from .. import keys, trust
from ..backends import KeyLoadError
from ..models import (
    BatchState,
    CertificateBackend,
    ItemState,
    SigningBatch,
    SigningBatchItem,
    SigningCertificate,
    SigningStep,
)
from . import runner
from .certificates import (
    _key_error,
    certificate_objects,
    certificate_refusal,
    membership_ended_message,
    signing_deadline,
)

# A remote-signing authorisation covers the batch plus this share of spare signatures (at least
# 2): a worker that dies after the service signed a hash but before the signature was stored
# spends one, and the batch must still finish when it resumes.
CSC_SPARE_SHARE = 0.05


def _step_records(*, school: School, step: str, class_pk: int | None):
    """The records at `step` now, in class order (the school's schema must be active)."""
    before = SIGNING_STEPS[step][1]
    records = YearRecord.objects.filter(status=before).select_related(
        "enrolment__student", "enrolment__school_class"
    )
    if class_pk is not None:
        records = records.filter(enrolment__school_class_id=class_pk)
    return records.order_by("enrolment__school_class__name", "enrolment__number", "record_id")


def _batch_class(batch: SigningBatch, school: School) -> SchoolClass | None:
    """The class a batch was started from, None for the whole school (read in the school's
    schema, whichever the connection is on: the confirmation is also made from the public one)."""
    if not batch.class_pk:
        return None
    with school:
        return SchoolClass.objects.filter(pk=batch.class_pk).first()


def _step_label(step: str) -> str:
    return str(SigningStep(step).label)


@transaction.atomic
def signing_batch_start(
    *,
    actor: User,
    school: School,
    step: str,
    certificate: SigningCertificate,
    school_class=None,
) -> SigningBatch:
    """A batch of every record of the class (or of the school) waiting for signature `step`.

    Call it with the school's schema active. The batch waits for its confirmation.
    """
    if step not in SigningStep.values:
        raise ValidationError(_("Unknown signing step."))
    if school_class is None and step == SigningStep.HOMEROOM_TEACHER:
        raise ValidationError(_("The homeroom teacher signs one class at a time."))
    if not can_sign(actor, school, school_class, step):
        raise PermissionDenied(_("You may not sign this step of these year records."))
    certificate = SigningCertificate.objects.select_for_update().get(pk=certificate.pk)
    holder_ok = (
        certificate.school_id == school.pk if step == SigningStep.SEAL else certificate.user_id == actor.pk
    )
    if not holder_ok or certificate.removed_at is not None:
        raise PermissionDenied(_("This certificate cannot sign for you here."))
    refusal = certificate_refusal(*certificate_objects(certificate))
    if refusal:
        raise ValidationError(refusal)
    records = list(_step_records(school=school, step=step, class_pk=getattr(school_class, "pk", None)))
    if not records:
        raise ValidationError(_("No year record is waiting for this signature."))
    scope = (
        _("Class %(name)s") % {"name": school_class.name}
        if school_class is not None
        else _("Whole school (%(count)d classes)")
        % {"count": len({r.enrolment.school_class_id for r in records})}
    )
    return _batch_create(
        actor=actor,
        school=school,
        step=step,
        class_pk=getattr(school_class, "pk", None),
        scope_label=scope,
        certificate=certificate,
        records=records,
    )


def _batch_create(
    *, actor: User, school: School, step: str, class_pk, scope_label: str, certificate, records, retry_of=None
) -> SigningBatch:
    """The batch and its items (in the records' order), its audit row, and the OTP asked for.

    Each item carries the moment the signer's membership in the school ends (sign_before), read
    now, in the transaction that checked the signer's right: a batch started before a contract
    teacher's last day signs nothing after it, whenever the worker gets to it."""
    deadline = signing_deadline(signer=actor, school=school, step=step)
    batch = SigningBatch.objects.create(
        school=school,
        step=step,
        class_pk=class_pk,
        scope_label=scope_label,
        signer=actor,
        certificate=certificate,
        state=BatchState.AWAITING_CONFIRMATION,
    )
    SigningBatchItem.objects.bulk_create(
        SigningBatchItem(
            batch=batch,
            record_pk=r.pk,
            record_id=r.record_id,
            version=r.version,
            student_name=r.enrolment.student.full_name,
            position=i,
            sign_before=deadline,
        )
        for i, r in enumerate(records, start=1)
    )
    changes = {"step": step, "records": len(records), "certificate": certificate.fingerprint}
    if deadline is not None:
        changes["sign_before"] = deadline.isoformat()
    if retry_of is not None:
        changes["retry_of"] = retry_of.pk
    audit_record(
        actor=actor,
        action=AuditAction.SIGNING_BATCH_STARTED,
        obj=batch,
        summary=_("Signing batch started: %(step)s, %(scope)s, %(count)d records")
        % {"step": _step_label(step), "scope": scope_label, "count": len(records)},
        changes=changes,
        school=school,
    )
    if certificate.backend == CertificateBackend.CSC:
        try:
            keys.csc_client().send_otp(certificate.csc_credential_id)
        except KeyLoadError as error:
            raise _key_error(error) from error
    return batch


def signing_batch_otp_resend(*, actor: User, batch: SigningBatch) -> None:
    if batch.signer_id != actor.pk or batch.state != BatchState.AWAITING_CONFIRMATION:
        raise PermissionDenied(_("This batch is not waiting for your confirmation."))
    try:
        keys.csc_client().send_otp(batch.certificate.csc_credential_id)
    except KeyLoadError as error:
        raise _key_error(error) from error


def _step_up(user: User, code: str):
    """Check a fresh two-factor code from the principal (allauth's TOTP); returns a function that
    marks it used. It is marked only once the key has been unlocked, so a mistyped PIN or OTP does
    not burn the code; a code is never accepted twice."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP, validate_totp_code
    from allauth.mfa.utils import decrypt

    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if authenticator is None:
        raise ValidationError(_("Set up two-factor authentication before signing as principal."))
    code = code.strip().replace(" ", "")
    totp = TOTP(authenticator)
    if not code or not validate_totp_code(decrypt(authenticator.data["secret"]), code):
        raise ValidationError(_("Wrong or already used two-factor code."))

    def mark_used() -> None:
        if not totp._mark_code_used(code):  # allauth's replay guard (a cache entry per code)
            raise ValidationError(_("Wrong or already used two-factor code."))

    return mark_used


def signing_batch_confirm(
    *, actor: User, school: School, batch: SigningBatch, pin: str = "", otp: str = "", totp: str = ""
) -> SigningBatch:
    """The one confirmation of a batch; then it is queued for the workers."""
    with transaction.atomic():
        batch = SigningBatch.objects.select_for_update().select_related("certificate").get(pk=batch.pk)
        if batch.signer_id != actor.pk or batch.school_id != school.pk:
            raise PermissionDenied(_("Only the signer who started the batch confirms it."))
        if batch.state != BatchState.AWAITING_CONFIRMATION:
            raise ValidationError(_("This batch has already been confirmed or cancelled."))
        # The signer's right is asked again: a contract teacher's role may have ended since the
        # start (the runner asks again before each chunk; confirming is refused at once).
        deadline = batch.items.values_list("sign_before", flat=True).first()
        if deadline is not None and timezone.now() >= deadline:
            raise PermissionDenied(membership_ended_message(deadline))
        if not can_sign(actor, school, _batch_class(batch, school), batch.step):
            raise PermissionDenied(_("You may not sign this step of these year records."))
        mark_used = _step_up(actor, totp) if batch.step == SigningStep.PRINCIPAL else None
        certificate = batch.certificate
        expires = None
        try:
            if certificate.backend == CertificateBackend.CSC:
                if not otp.strip():
                    raise ValidationError(_("Enter the confirmation code (OTP) sent by the signing service."))
                count = batch.items.count()
                if batch.step == SigningStep.SEAL:  # the XML and the PDF (signing.services.pdfs)
                    count *= 2
                sad = keys.csc_client().authorize(
                    certificate.csc_credential_id,
                    # + a chunk (runner.chunk_size()): a worker that dies mid-chunk spends it.
                    num_signatures=count
                    + max(2, int(count * CSC_SPARE_SHARE), min(count, runner.chunk_size())),
                    otp=otp.strip(),
                )
                secret, expires = sad.token, sad.expires_at
            else:
                if not pin:
                    raise ValidationError(_("Enter the PIN of your key."))
                keys.loaded_key(certificate, pin)  # a wrong PIN is said now, not record by record
                secret = pin
        except KeyLoadError as error:
            raise _key_error(error) from error
        if mark_used is not None:
            mark_used()
        batch.secret, batch.secret_expires_at = trust.seal_secret(secret), expires
        batch.state, batch.confirmed_at = BatchState.QUEUED, timezone.now()
        batch.save(update_fields=["secret", "secret_expires_at", "state", "confirmed_at"])
        audit_record(
            actor=actor,
            action=AuditAction.SIGNING_BATCH_CONFIRMED,
            obj=batch,
            summary=_("Signing batch %(id)d confirmed") % {"id": batch.pk},
            changes={"step": batch.step},
            school=school,
        )
        transaction.on_commit(lambda: runner.signing_batch_enqueue(batch.pk))
    return batch


@transaction.atomic
def signing_batch_cancel(*, actor: User, school: School, batch: SigningBatch) -> SigningBatch:
    """Stop a batch: the items not yet signed stay unsigned (those signed stay signed)."""
    batch = SigningBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.signer_id != actor.pk or batch.school_id != school.pk:
        raise PermissionDenied(_("Only the signer who started the batch cancels it."))
    if batch.state in (BatchState.DONE, BatchState.CANCELLED):
        return batch
    batch.state, batch.secret, batch.finished_at = BatchState.CANCELLED, None, timezone.now()
    batch.lease_owner, batch.lease_until = "", None
    batch.save(update_fields=["state", "secret", "finished_at", "lease_owner", "lease_until"])
    audit_record(
        actor=actor,
        action=AuditAction.SIGNING_BATCH_CANCELLED,
        obj=batch,
        summary=_("Signing batch %(id)d cancelled") % {"id": batch.pk},
        changes={"pending": batch.items.filter(state=ItemState.PENDING).count()},
        school=school,
    )
    return batch


def signing_batch_retry(*, actor: User, school: School, batch: SigningBatch) -> SigningBatch:
    """A new batch of the failed records of `batch` that are still waiting for this signature."""
    if batch.signer_id != actor.pk or batch.school_id != school.pk:
        raise PermissionDenied(_("Only the signer who started the batch signs it again."))
    # The signer's right is asked again (it may have ended since: a contract teacher's last day).
    if not can_sign(actor, school, _batch_class(batch, school), batch.step):
        raise PermissionDenied(_("You may not sign this step of these year records."))
    failed = list(batch.items.filter(state=ItemState.FAILED).values_list("record_pk", flat=True))
    before = SIGNING_STEPS[batch.step][1]
    waiting = list(
        YearRecord.objects.filter(pk__in=failed, status=before)
        .select_related("enrolment__student", "enrolment__school_class")
        .order_by("enrolment__school_class__name", "enrolment__number")
    )
    if not waiting:
        raise ValidationError(_("No failed record of this batch is still waiting for this signature."))
    with transaction.atomic():
        retry = _batch_create(
            actor=actor,
            school=school,
            step=batch.step,
            class_pk=batch.class_pk,
            scope_label=_("%(scope)s: signed again") % {"scope": batch.scope_label},
            certificate=batch.certificate,
            records=waiting,
            retry_of=batch,
        )
    return retry
