"""Signing certificates: what they say, whether they can sign now, registering and removing them."""

from __future__ import annotations

import datetime as dt
import unicodedata

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import School, User
from portal.permissions import access_for, forget_access
from portal.selectors import membership_end
from portal.services import audit_record
from transcripts.permissions import SEAL_HOLDERS, SIGNING_STEP_ROLES

from .. import keys, trust
from ..backends import KeyLoadError, LoadedKey
from ..choices import ProblemCode
from ..models import (
    CertificateBackend,
    SigningCertificate,
)
from ..verify import certificate_problems


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
    codes = {p.code for p in problems}
    if ProblemCode.REVOKED in codes:
        return str(ProblemCode.REVOKED.label)
    if codes & {ProblemCode.UNTRUSTED_ISSUER, ProblemCode.CHAIN_TOO_LONG, ProblemCode.NO_TRUST_ROOTS}:
        return str(ProblemCode.UNTRUSTED_ISSUER.label)
    if problems:
        return _("The certificate cannot be used for signing: %(detail)s") % {
            "detail": "; ".join(p.detail for p in problems)
        }
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


# --- Memberships that end (visiting and contract teachers, issue 14) -----------------------------


def signing_deadline(*, signer: User, school: School, step: str) -> dt.datetime | None:
    """The moment `signer`'s right to make `step` in `school` ends: the start of the day after
    the last end date of the roles that give it (in the province's time zone); None when one of
    them has no end date. Copied onto a batch's items when it starts (SigningBatchItem.sign_before)."""
    last_day = membership_end(user=signer, school=school, roles=SIGNING_STEP_ROLES[step])
    if last_day is None:
        return None
    return dt.datetime.combine(
        last_day + dt.timedelta(days=1), dt.time.min, tzinfo=timezone.get_default_timezone()
    )


def membership_ended_message(deadline: dt.datetime) -> str:
    """Why a batch signs nothing more after its signer's membership ended (said to the signer)."""
    last_day = timezone.localtime(deadline, timezone.get_default_timezone()).date() - dt.timedelta(days=1)
    return _(
        "Your role in this school ended on %(date)s: the records left in this batch were not signed "
        "(your earlier signatures stay valid)."
    ) % {"date": last_day.strftime("%d/%m/%Y")}


def _holder_is_a_member(user: User) -> bool:
    """Does the person hold a role in a school now? (Read afresh: roles granted or ended in this
    request count.)"""
    forget_access(user)
    return bool(access_for(user).school_roles)


def can_manage_seal(user: User, school: School) -> bool:
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
    if user is not None and not _holder_is_a_member(user):
        # A visiting or contract teacher whose memberships have all ended signs nothing any more.
        raise PermissionDenied(
            _("You hold no role in a school now: a certificate is registered while you work in one.")
        )
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
        "server_error": _("The remote signing service is failing."),
        "busy": _("The remote signing service is busy."),
        "protocol": _("The remote signing service answered something the portal does not understand."),
        "unauthorised_client": _("The remote signing service refused the portal; tell the operators."),
        "device_error": _("The signing token or HSM is not answering."),
        "tsa_unavailable": _(
            "The timestamping service cannot be reached; the batch waits and tries again by itself."
        ),
        "tsa_refused": _("The timestamping service refused to timestamp the signatures; tell the operators."),
        "no_library": _("The token's software (PKCS#11 library) is not installed on the server."),
        "wrong_deployment_key": _(
            "The stored key file cannot be opened with this server's key; tell the operators."
        ),
        "unknown_backend": _("This kind of key is not supported."),
    }
    return messages.get(code) or _("The key cannot be used: %(detail)s") % {"detail": str(error)}


def certificate_register_pkcs12(
    *, actor: User, data: bytes, pin: str, user: User | None = None, school: School | None = None
) -> SigningCertificate:
    """A PKCS#12 file: opened with its PIN to check it, then stored encrypted (never the PIN)."""
    from ..backends.pkcs12 import pkcs12_load, pkcs12_seal

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
    from ..backends.pkcs11 import pkcs11_load

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
