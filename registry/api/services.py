"""Writes of the partner API (style.md: services): clients, keys, consent issuers, the call log.

Every registration, change, key issue and revocation locks what it changes and writes an audit
row (portal.services.audit_record) in the same transaction; the admin site's forms and actions
only call these. Only the department administrator may (portal.permissions.can_administer_province):
a partner's key opens students' records, so nobody below the province decides who holds one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import User
from portal.permissions import can_administer_province
from portal.services import audit_record

from ..models_api import ApiCall, ConsentIssuer, PartnerClient, PartnerKey
from .choices import ConsentAlgorithm

# A key as handed to the partner: hbk_<prefix>_<secret>. The prefix (8 symbols, 40 bits) finds the
# row and is safe to show and log; the secret is 256 random bits (43 symbols of URL-safe base64),
# of which the database keeps only the SHA-256. A fast hash is enough: the secret is random and
# long, there is nothing to guess a dictionary from (unlike a password).
KEY_MARK = "hbk_"
PREFIX_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
PREFIX_LENGTH = 8
SECRET_BYTES = 32

CLIENT_FIELDS = ("name", "kind", "scopes", "purposes", "throttle_rate", "active")
ISSUER_FIELDS = ("name", "issuer", "algorithm", "public_key", "active")


def key_digest(secret: str) -> str:
    """The SHA-256 (hex) of a key's secret part: what the row keeps."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def key_grace() -> dt.timedelta:
    """How long an old key keeps working after a rotation with a grace period (a setting)."""
    return dt.timedelta(hours=int(getattr(settings, "HOCBA_API_KEY_GRACE_HOURS", 7 * 24)))


def _require_admin(actor: User) -> None:
    if not can_administer_province(actor):
        raise PermissionDenied(_("Only the department administrator manages API partners."))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


# --- Clients -------------------------------------------------------------------------------------


@transaction.atomic
def partner_client_register(*, actor: User, **fields: Any) -> PartnerClient:
    """Register a partner client (no key yet: partner_key_issue gives one); audited."""
    _require_admin(actor)
    unknown = set(fields) - set(CLIENT_FIELDS)
    if unknown:
        raise ValueError(f"partner_client_register cannot set {sorted(unknown)!r}")
    client = PartnerClient(**fields)
    client.full_clean()
    client.save()
    audit_record(
        actor=actor,
        action=AuditAction.PARTNER_CLIENT_REGISTERED,
        obj=client,
        summary=_("API partner %(name)s registered") % {"name": client.name},
        changes={name: {"old": None, "new": _plain(getattr(client, name))} for name in CLIENT_FIELDS},
    )
    return client


@transaction.atomic
def partner_client_update(*, actor: User, client: PartnerClient, **fields: Any) -> PartnerClient:
    """Change a client's name, kind, scopes, purposes, throttle rate or active flag; audited."""
    _require_admin(actor)
    locked = PartnerClient.objects.select_for_update(no_key=True).get(pk=client.pk)
    changes: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        if name not in CLIENT_FIELDS:
            raise ValueError(f"partner_client_update cannot change {name!r}")
        old = getattr(locked, name)
        if _plain(old) != _plain(value):
            changes[name] = {"old": _plain(old), "new": _plain(value)}
            setattr(locked, name, value)
    if not changes:
        return locked
    locked.updated_at = timezone.now()
    locked.full_clean()
    locked.save(update_fields=[*changes, "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.PARTNER_CLIENT_CHANGED,
        obj=locked,
        summary=_("API partner %(name)s changed: %(fields)s")
        % {"name": locked.name, "fields": ", ".join(changes)},
        changes=changes,
    )
    return locked


# --- Keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: the row, and the key itself, shown once and never stored."""

    key: PartnerKey
    secret: str  # the whole key, hbk_<prefix>_<secret>


@transaction.atomic
def partner_key_issue(
    *, actor: User, client: PartnerClient, revoke_others: bool = False, grace: dt.timedelta | None = None
) -> IssuedKey:
    """Issue a new key to `client`; its other working keys expire after `grace` (by default the
    setting's grace period, key_grace()), or are revoked at once with `revoke_others`. Audited.

    A first key (no other working one) is a plain issue; a later one is a rotation.
    """
    _require_admin(actor)
    client = PartnerClient.objects.select_for_update(no_key=True).get(pk=client.pk)
    now = timezone.now()
    others = [k for k in client.keys.select_for_update(no_key=True) if k.usable_at(now)]
    until = now + (grace if grace is not None else key_grace())
    if revoke_others:
        for other in others:
            _revoke(actor=actor, key=other, now=now, why=_("rotated, revoked at once"))
    else:
        for other in others:
            if other.expires_at is None or other.expires_at > until:
                other.expires_at = until
                other.save(update_fields=["expires_at"])
    for _attempt in range(5):  # a prefix already taken (1 in 2**40 per key): draw again
        prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        secret = secrets.token_urlsafe(SECRET_BYTES)
        try:
            with transaction.atomic():
                key = PartnerKey.objects.create(
                    client=client, prefix=prefix, digest=key_digest(secret), created_by=actor, created_at=now
                )
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover -- five collisions of 40 random bits
        raise RuntimeError("Could not draw a free key prefix")
    audit_record(
        actor=actor,
        action=AuditAction.PARTNER_KEY_ISSUED,
        obj=key,
        summary=_("API key %(prefix)s issued to %(name)s") % {"prefix": prefix, "name": client.name},
        changes={
            "client": client.pk,
            "prefix": prefix,
            "others": [o.prefix for o in others],
            "others_revoked": bool(revoke_others and others),
            "others_expire_at": None if revoke_others or not others else until.isoformat(),
        },
    )
    return IssuedKey(key=key, secret=f"{KEY_MARK}{prefix}_{secret}")


def _revoke(*, actor: User, key: PartnerKey, now: dt.datetime, why: str) -> None:
    key.revoked_at = now
    key.revoked_by = actor
    key.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor,
        action=AuditAction.PARTNER_KEY_REVOKED,
        obj=key,
        summary=_("API key %(prefix)s of %(name)s revoked (%(why)s)")
        % {"prefix": key.prefix, "name": key.client.name, "why": why},
        changes={"client": key.client_id, "prefix": key.prefix},
    )


@transaction.atomic
def partner_key_revoke(*, actor: User, key: PartnerKey) -> PartnerKey:
    """Revoke a key at once (refused from the next call on); audited. Revoking twice is refused."""
    _require_admin(actor)
    locked = PartnerKey.objects.select_for_update(no_key=True).select_related("client").get(pk=key.pk)
    if locked.revoked_at is not None:
        raise ValidationError(_("This API key is already revoked."))
    _revoke(actor=actor, key=locked, now=timezone.now(), why=_("revoked"))
    return locked


# --- Consent issuers -----------------------------------------------------------------------------


def consent_public_key_check(*, algorithm: str, public_key: str) -> None:
    """Raise ValidationError unless `public_key` is a PEM public key of `algorithm`'s kind."""
    try:
        loaded = load_pem_public_key(public_key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as error:
        raise ValidationError({"public_key": _("This is not a PEM public key.")}) from error
    if algorithm == ConsentAlgorithm.ES256:
        fits = isinstance(loaded, ec.EllipticCurvePublicKey) and loaded.curve.name == "secp256r1"
    elif algorithm == ConsentAlgorithm.EDDSA:
        fits = isinstance(loaded, ed25519.Ed25519PublicKey)
    else:
        fits = False
    if not fits:
        raise ValidationError({"public_key": _("This public key does not fit the algorithm chosen.")})


@transaction.atomic
def consent_issuer_register(*, actor: User, **fields: Any) -> ConsentIssuer:
    """Register a party whose consent tokens the portal trusts, with its public key; audited."""
    _require_admin(actor)
    unknown = set(fields) - set(ISSUER_FIELDS)
    if unknown:
        raise ValueError(f"consent_issuer_register cannot set {sorted(unknown)!r}")
    issuer = ConsentIssuer(**fields)
    issuer.public_key = issuer.public_key.strip()
    issuer.full_clean()
    consent_public_key_check(algorithm=issuer.algorithm, public_key=issuer.public_key)
    issuer.save()
    audit_record(
        actor=actor,
        action=AuditAction.CONSENT_ISSUER_REGISTERED,
        obj=issuer,
        summary=_("Consent issuer %(name)s registered") % {"name": issuer.name},
        changes={name: {"old": None, "new": getattr(issuer, name)} for name in ISSUER_FIELDS},
    )
    return issuer


@transaction.atomic
def consent_issuer_update(*, actor: User, issuer: ConsentIssuer, **fields: Any) -> ConsentIssuer:
    """Change a consent issuer (a new public key, deactivation …); audited."""
    _require_admin(actor)
    locked = ConsentIssuer.objects.select_for_update(no_key=True).get(pk=issuer.pk)
    if "public_key" in fields:
        fields["public_key"] = fields["public_key"].strip()
    changes: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        if name not in ISSUER_FIELDS:
            raise ValueError(f"consent_issuer_update cannot change {name!r}")
        if getattr(locked, name) != value:
            changes[name] = {"old": getattr(locked, name), "new": value}
            setattr(locked, name, value)
    if not changes:
        return locked
    locked.updated_at = timezone.now()
    locked.full_clean()
    consent_public_key_check(algorithm=locked.algorithm, public_key=locked.public_key)
    locked.save(update_fields=[*changes, "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.CONSENT_ISSUER_CHANGED,
        obj=locked,
        summary=_("Consent issuer %(name)s changed: %(fields)s")
        % {"name": locked.name, "fields": ", ".join(changes)},
        changes=changes,
    )
    return locked


# --- The call log --------------------------------------------------------------------------------


def api_call_log(
    *,
    client: PartnerClient | None,
    key_prefix: str,
    purpose: str,
    method: str,
    path: str,
    status_code: int,
    duration_ms: int,
    error_code: str = "",
    personal_id_digest: str = "",
    consent_jti: str = "",
    record_id: str = "",
    version: int | None = None,
    sha256: str = "",
) -> ApiCall:
    """Append the log row of one call (whatever its outcome). Values from outside are cut to fit."""
    return ApiCall.objects.create(
        client=client,
        key_prefix=key_prefix[:16],
        purpose=purpose[:32],
        method=method[:10],
        path=path[:200],
        status_code=status_code,
        error_code=error_code[:40],
        personal_id_digest=personal_id_digest,
        consent_jti=consent_jti[:100],
        record_id=record_id[:64],
        version=version if version is not None and 0 < version < 2**31 else None,
        sha256=sha256,
        duration_ms=max(0, min(duration_ms, 2**31 - 1)),
    )
