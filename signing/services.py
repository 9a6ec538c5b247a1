"""Signing: certificates registered with their holders, and batches of year records signed in the background.

The flow of a batch (design.md §4, domain.md §5):

1. `signing_batch_start`: the signer picks the records (a class, or the whole school) at one step
   (homeroom teacher, principal, seal) and the certificate; the batch lists the records that are
   at that step now. With a remote-signing service the service is asked to send its OTP.
2. `signing_batch_confirm`: one confirmation for the whole batch: the PIN of the key file or the
   token, or the OTP of the remote-signing service (which returns an authorisation for the
   batch's signatures), plus a fresh two-factor code for the principal's step. What unlocks the
   key is kept encrypted on the batch until it ends. Then the batch is queued.
3. `signing_batch_run` (a Celery task): holds a lease on the batch and signs item after item.
   Each item is signed in its own transaction that also records its outcome, with the record's
   state, the signer's role and the certificate checked again: a failure is recorded with its
   reason and the batch goes on; a worker that dies leaves the lease to run out and the resume
   sweep (`signing_batches_resume`) hands the batch to another worker, which carries on with the
   items still pending. No record is signed twice: its signature and its item's outcome commit
   together, and the database refuses a second signature at a step (transcripts migration 0009).
4. Failed items can be signed again in a new batch of their own (`signing_batch_retry`).
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.db import connection
from portal.models import School, User
from portal.permissions import forget_access
from portal.services import audit_record

from . import keys, trust
from .backends import KeyLoadError, LoadedKey
from .models import (
    BatchState,
    CertificateBackend,
    ItemState,
    SigningBatch,
    SigningBatchItem,
    SigningCertificate,
    SigningStep,
)
from .profile import SigningError, sign_year_record
from .verify import certificate_problems

log = logging.getLogger(__name__)

# A remote-signing authorisation covers the batch plus this share of spare signatures (at least
# 2): a worker that dies after the service signed a hash but before the signature was stored
# spends one, and the batch must still finish when it resumes.
CSC_SPARE_SHARE = 0.05


# --- Certificates ------------------------------------------------------------------------------


def _attribute(name: x509.Name, oid) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def certificate_subject_name(cert: x509.Certificate) -> str:
    return _attribute(cert.subject, NameOID.COMMON_NAME)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split())).casefold()


def certificate_refusal(cert: x509.Certificate, chain, *, at: dt.datetime | None = None) -> str:
    """Why this certificate cannot sign now, in the signer's language; "" when it can."""
    at = at or trust.now()
    if at > cert.not_valid_after_utc:
        return _("The certificate expired on %(date)s.") % {
            "date": timezone.localtime(cert.not_valid_after_utc).strftime("%d/%m/%Y")
        }
    if at < cert.not_valid_before_utc:
        return _("The certificate is not valid before %(date)s.") % {
            "date": timezone.localtime(cert.not_valid_before_utc).strftime("%d/%m/%Y")
        }
    problems = certificate_problems(cert, chain, trust_roots=trust.trust_roots(), crls=trust.crls(), at=at)
    if any("revoked" in p for p in problems):
        return _("The certificate has been revoked by the authority that issued it.")
    if any("trust" in p.lower() or "chain" in p.lower() or "issuer" in p.lower() for p in problems):
        return _("The certificate was not issued by a certification authority this portal trusts.")
    if problems:
        return _("The certificate cannot be used for signing: %(detail)s") % {"detail": "; ".join(problems)}
    return ""


def _holder_problem(cert: x509.Certificate, *, user: User | None, school: School | None) -> str:
    """The certificate must name its holder: the person (CN = full name) or the school (O or CN)."""
    cn = _attribute(cert.subject, NameOID.COMMON_NAME)
    if user is not None:
        if _normal(cn) != _normal(user.get_full_name()):
            return _("This certificate was issued to %(name)s, not to you (%(you)s).") % {
                "name": cn,
                "you": user.get_full_name(),
            }
        return ""
    assert school is not None  # certificate_register: a person's or a school's, never neither
    organisation = _attribute(cert.subject, NameOID.ORGANIZATION_NAME)
    if _normal(school.name) not in (_normal(cn), _normal(organisation)):
        return _("This certificate was issued to %(name)s, not to %(school)s.") % {
            "name": organisation or cn,
            "school": school.name,
        }
    return ""


def can_manage_seal(user: User, school: School) -> bool:
    from portal.permissions import access_for
    from transcripts.records.permissions import SEAL_HOLDERS

    return bool(access_for(user).roles_in_school(school.pk) & SEAL_HOLDERS)


@transaction.atomic
def certificate_register(
    *,
    actor: User,
    loaded: LoadedKey | None = None,
    cert: x509.Certificate | None = None,
    chain=(),
    user: User | None = None,
    school: School | None = None,
    backend: str,
    **location,
) -> SigningCertificate:
    """Register a certificate with a person (`user`, who must be the actor) or a school's seal.

    Refused when it does not name its holder, is registered with someone else already, is not
    (or no longer) valid, or is not from a trusted authority.
    """
    if loaded is not None:
        cert, chain = loaded.cert, loaded.chain
    assert cert is not None, "certificate_register needs `loaded` or `cert`"
    if user is not None and school is None:
        holder = user.get_full_name()
    elif school is not None and user is None:
        holder = school.name
    else:
        raise ValueError("A certificate is registered with a person or with a school, not both")
    if user is not None and user.pk != actor.pk:
        raise PermissionDenied(_("You can only register your own certificate."))
    if school is not None and not can_manage_seal(actor, school):
        raise PermissionDenied(_("Only the school's administrator or principal registers its seal."))
    fingerprint = trust.fingerprint(cert)
    taken = (
        SigningCertificate.objects.select_for_update()
        .filter(fingerprint=fingerprint, removed_at=None)
        .first()
    )
    if taken is not None:
        if (taken.user_id, taken.school_id) == (getattr(user, "pk", None), getattr(school, "pk", None)):
            raise ValidationError(_("This certificate is already registered."))
        raise ValidationError(_("This certificate is registered with another account."))
    problem = _holder_problem(cert, user=user, school=school) or certificate_refusal(cert, chain)
    if problem:
        raise ValidationError(problem)
    registered = SigningCertificate.objects.create(
        user=user,
        school=school,
        backend=backend,
        certificate=cert.public_bytes(Encoding.DER),
        chain_pem=trust.chain_pem(chain),
        fingerprint=fingerprint,
        serial=format(cert.serial_number, "x"),
        subject_name=_attribute(cert.subject, NameOID.COMMON_NAME),
        subject_title=_attribute(cert.subject, NameOID.TITLE),
        issuer_name=_attribute(cert.issuer, NameOID.COMMON_NAME),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        registered_by=actor,
        **location,
    )
    audit_record(
        actor=actor,
        action=AuditAction.CERTIFICATE_REGISTERED,
        obj=registered,
        summary=_("Signing certificate of %(holder)s registered (%(backend)s, serial %(serial)s)")
        % {
            "holder": holder,
            "backend": registered.get_backend_display(),
            "serial": registered.serial,
        },
        changes={"fingerprint": fingerprint, "backend": backend, "serial": registered.serial},
        school=school,
    )
    return registered


def _key_error(error: KeyLoadError) -> ValidationError:
    return ValidationError(key_error_message(error))


def key_error_message(error: Exception) -> str:
    """A key or remote-signing failure, said to the signer (the code picks the words)."""
    code = getattr(error, "code", "")
    messages = {
        "wrong_pin": _("Wrong PIN."),
        "locked_pin": _("The PIN is locked on the token; ask the school's administrator."),
        "not_pkcs12": _("The file is not a PKCS#12 key file (.p12 or .pfx)."),
        "no_key": _("No private key was found with this certificate."),
        "no_token": _("The token was not found."),
        "no_certificate": _("No certificate was found on the token."),
        "key_mismatch": _("The key does not belong to the registered certificate."),
        "unsupported_key": _("Only RSA-2048 and ECDSA P-256 keys can sign year records."),
        "wrong_otp": _("Wrong confirmation code (OTP)."),
        "otp_locked": _("Too many wrong codes: ask the service for a new one."),
        "sad_expired": _("The remote signing authorisation has expired: sign the remaining records again."),
        "sad_exhausted": _("The remote signing authorisation is used up: sign the remaining records again."),
        "sad_invalid": _("The remote signing service refused the authorisation."),
        "unreachable": _("The remote signing service cannot be reached; try again later."),
        "unknown_credential": _("The remote signing service does not know this credential."),
        "certificate_revoked": _("The certificate has been revoked by the authority that issued it."),
        "certificate_expired": _("The certificate has expired."),
        "csc_not_configured": _("No remote signing service is configured."),
    }
    return messages.get(code) or _("The key cannot be used: %(detail)s") % {"detail": str(error)}


def certificate_register_pkcs12(
    *, actor: User, data: bytes, pin: str, user: User | None = None, school: School | None = None
) -> SigningCertificate:
    """A PKCS#12 file: opened with its PIN to check it, then stored encrypted (never the PIN)."""
    from .backends.pkcs12 import pkcs12_load, pkcs12_seal

    try:
        loaded = pkcs12_load(data, pin)
    except KeyLoadError as error:
        raise _key_error(error) from error
    return certificate_register(
        actor=actor,
        loaded=loaded,
        user=user,
        school=school,
        backend=CertificateBackend.PKCS12,
        sealed_pkcs12=pkcs12_seal(data, trust.deployment_key()),
    )


def certificate_register_pkcs11(
    *, actor: User, school: School, token_label: str, key_label: str, pin: str
) -> SigningCertificate:
    """The school seal on a PKCS#11 token: the key is found with the PIN (which is not stored)."""
    from .backends.pkcs11 import pkcs11_load

    try:
        loaded = pkcs11_load(
            library=keys.pkcs11_library(), token_label=token_label, pin=pin, key_label=key_label
        )
    except KeyLoadError as error:
        raise _key_error(error) from error
    return certificate_register(
        actor=actor,
        loaded=loaded,
        school=school,
        backend=CertificateBackend.PKCS11,
        token_label=token_label,
        key_label=key_label,
    )


def csc_credentials(*, user: User) -> list:
    """The user's credentials at the remote-signing service (which knows them by username)."""
    try:
        client = keys.csc_client()
        return [client.credentials_info(c) for c in client.credentials_list(user.username)]
    except KeyLoadError as error:
        raise _key_error(error) from error


def certificate_register_csc(*, actor: User, credential_id: str) -> SigningCertificate:
    """A credential of the actor's at the remote-signing service."""
    try:
        client = keys.csc_client()
        if credential_id not in client.credentials_list(actor.username):
            raise ValidationError(_("This credential is not yours at the remote signing service."))
        credential = client.credentials_info(credential_id)
    except KeyLoadError as error:
        raise _key_error(error) from error
    return certificate_register(
        actor=actor,
        cert=credential.cert,
        chain=credential.chain,
        user=actor,
        backend=CertificateBackend.CSC,
        csc_user_id=actor.username,
        csc_credential_id=credential_id,
    )


@transaction.atomic
def certificate_remove(*, actor: User, certificate: SigningCertificate) -> SigningCertificate:
    """Stop using a certificate (kept, for the record of what it signed)."""
    certificate = SigningCertificate.objects.select_for_update().get(pk=certificate.pk)
    if certificate.user_id is not None and certificate.user_id != actor.pk:
        raise PermissionDenied(_("You can only remove your own certificate."))
    if certificate.school is not None and not can_manage_seal(actor, certificate.school):
        raise PermissionDenied(_("Only the school's administrator or principal removes its seal."))
    if certificate.removed_at is not None:
        return certificate
    certificate.removed_at, certificate.removed_by = timezone.now(), actor
    certificate.save(update_fields=["removed_at", "removed_by"])
    audit_record(
        actor=actor,
        action=AuditAction.CERTIFICATE_REMOVED,
        obj=certificate,
        summary=_("Signing certificate %(serial)s removed") % {"serial": certificate.serial},
        changes={"fingerprint": certificate.fingerprint},
        school=certificate.school,
    )
    return certificate


def certificate_objects(certificate: SigningCertificate) -> tuple[x509.Certificate, tuple]:
    return x509.load_der_x509_certificate(bytes(certificate.certificate)), trust.chain_from_pem(
        certificate.chain_pem
    )


# --- Batches -------------------------------------------------------------------------------------


def _step_records(*, school: School, step: str, class_pk: int | None):
    """The records at `step` now, in class order (the school's schema must be active)."""
    from transcripts.models import YearRecord
    from transcripts.records.services import SIGNING_STEPS

    before = SIGNING_STEPS[step][1]
    records = YearRecord.objects.filter(status=before).select_related(
        "enrolment__student", "enrolment__school_class"
    )
    if class_pk is not None:
        records = records.filter(enrolment__school_class_id=class_pk)
    return records.order_by("enrolment__school_class__name", "enrolment__number", "record_id")


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
    from transcripts.records.permissions import can_sign

    if step not in SigningStep.values:
        raise ValidationError(_("Unknown signing step."))
    if school_class is None and step == SigningStep.HOMEROOM_TEACHER:
        raise ValidationError(_("The homeroom teacher signs one class at a time."))
    classes = [school_class] if school_class is not None else None
    if classes is not None and not can_sign(actor, school, school_class, step):
        raise PermissionDenied(_("You may not sign this step of these year records."))
    if classes is None:
        from schools.models import SchoolClass

        probe = SchoolClass(homeroom_teacher_id=None)
        if not can_sign(actor, school, probe, step):
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
    """The batch and its items (in the records' order), its audit row, and the OTP asked for."""
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
        )
        for i, r in enumerate(records, start=1)
    )
    changes = {"step": step, "records": len(records), "certificate": certificate.fingerprint}
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
        mark_used = _step_up(actor, totp) if batch.step == SigningStep.PRINCIPAL else None
        certificate = batch.certificate
        expires = None
        try:
            if certificate.backend == CertificateBackend.CSC:
                if not otp.strip():
                    raise ValidationError(_("Enter the confirmation code (OTP) sent by the signing service."))
                count = batch.items.count()
                sad = keys.csc_client().authorize(
                    certificate.csc_credential_id,
                    num_signatures=count + max(2, int(count * CSC_SPARE_SHARE)),
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
        transaction.on_commit(lambda: signing_batch_enqueue(batch.pk))
    return batch


def signing_batch_enqueue(batch_pk: int) -> None:
    from .tasks import signing_batch_run as task

    queue = getattr(settings, "HOCBA_SIGNING_QUEUE", "celery")
    task.apply_async(args=[batch_pk], headers={"_schema_name": "public"}, queue=queue)


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
    from transcripts.models import YearRecord
    from transcripts.records.services import SIGNING_STEPS

    if batch.signer_id != actor.pk or batch.school_id != school.pk:
        raise PermissionDenied(_("Only the signer who started the batch signs it again."))
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


# --- Running a batch (the worker) ----------------------------------------------------------------


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
