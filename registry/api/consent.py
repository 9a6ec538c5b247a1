"""Consent tokens: the citizen's permission, signed by a registered consent issuer (docs/api.md).

A consent token is a JWT signed ES256 or EdDSA by a ConsentIssuer (e.g. the citizen identity app),
made for one partner client and one purpose:

    header  {"alg": "ES256", "typ": "JWT"}
    claims  {"iss": <issuer>, "sub": <the citizen's 12-digit personal ID>, "aud": <client id>,
             "scope": "records:read", "purpose": "admission", "iat": …, "exp": …, "jti": <unique>}

The portal checks, in order: the header's algorithm (asymmetric only: never none, never HS256),
the issuer (registered, active, same algorithm), the signature with the issuer's public key, the
required claims, expiry and issue time (60 s of clock skew allowed), the audience (the calling
client), the lifetime (exp - iat at most HOCBA_API_CONSENT_MAX_DAYS), the scope, the purpose
(the call's), and the subject (the personal ID asked for). Each failure has its own code and a
403. The algorithm the portal verifies with is the issuer's, never the token's own say-so.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from ..models_api import ConsentIssuer, PartnerClient
from .choices import ConsentAlgorithm, Scope
from .errors import ApiError
from .selectors import personal_id_valid

MAX_TOKEN_LENGTH = 8192
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ["iss", "sub", "aud", "iat", "exp", "jti"]

MESSAGES = {
    "consent_required": _("This call needs the citizen's consent token (header X-Consent-Token)."),
    "consent_invalid": _("The consent token cannot be read or lacks a required claim."),
    "consent_algorithm": _("The consent token's signature algorithm is not accepted."),
    "consent_issuer": _("The consent token was not issued by a consent issuer registered with the portal."),
    "consent_signature": _("The consent token's signature is not valid."),
    "consent_expired": _("The consent token has expired."),
    "consent_not_yet_valid": _("The consent token is not valid yet."),
    "consent_lifetime": _("The consent token is valid for longer than the portal accepts."),
    "consent_audience": _("The consent token was given to another client."),
    "consent_scope": _("The consent token does not allow reading records."),
    "consent_purpose": _("The consent token was given for another purpose than this call's."),
    "consent_subject": _("The consent token was given by another person than the one asked about."),
}


class ConsentRefused(ApiError):
    """403: no consent, or one that does not cover this call; `code` says which check failed."""

    def __init__(self, code: str, jti: str = "") -> None:
        super().__init__(code, MESSAGES[code], status_code=403)
        self.jti = jti


@dataclass(frozen=True)
class Consent:
    """A checked consent: who gave it (sub), to whom (aud), for what, until when, its id."""

    issuer: str
    subject: str
    audience: str
    purpose: str
    jti: str
    expires_at: dt.datetime


def max_lifetime() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "HOCBA_API_CONSENT_MAX_DAYS", 30)))


@functools.lru_cache(maxsize=64)
def _public_key(pem: str) -> Any:
    return load_pem_public_key(pem.encode("ascii"))


def consent_check(
    *, token: str, client: PartnerClient, purpose: str, personal_id: str | None = None
) -> Consent:
    """The consent carried by `token`, if it lets `client` read `personal_id`'s records for
    `purpose`; raise ConsentRefused (403, with the failed check's code) otherwise.

    Without `personal_id` (a record asked for by id) the subject is returned and the caller
    checks the record is the subject's.
    """
    token = (token or "").strip()
    if not token:
        raise ConsentRefused("consent_required")
    if len(token) > MAX_TOKEN_LENGTH:
        raise ConsentRefused("consent_invalid")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as error:
        raise ConsentRefused("consent_invalid") from error
    claimed = unverified.get("jti")
    jti = claimed[:100] if isinstance(claimed, str) else ""
    if header.get("alg") not in ConsentAlgorithm.values:
        raise ConsentRefused("consent_algorithm", jti)
    iss = unverified.get("iss")
    issuer = (
        ConsentIssuer.objects.filter(issuer=iss, active=True).first()
        if isinstance(iss, str) and 0 < len(iss) <= 200 and "\x00" not in iss
        else None
    )
    if issuer is None:
        raise ConsentRefused("consent_issuer", jti)
    if header.get("alg") != issuer.algorithm:
        raise ConsentRefused("consent_algorithm", jti)
    try:
        claims = jwt.decode(
            token,
            _public_key(issuer.public_key),
            algorithms=[issuer.algorithm],  # the issuer's, never the token's own
            audience=str(client.identifier),
            issuer=issuer.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.InvalidSignatureError as error:
        raise ConsentRefused("consent_signature", jti) from error
    except jwt.ExpiredSignatureError as error:
        raise ConsentRefused("consent_expired", jti) from error
    except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError) as error:
        raise ConsentRefused("consent_not_yet_valid", jti) from error
    except jwt.InvalidAudienceError as error:
        raise ConsentRefused("consent_audience", jti) from error
    except jwt.InvalidAlgorithmError as error:
        raise ConsentRefused("consent_algorithm", jti) from error
    except (jwt.InvalidTokenError, ValueError, TypeError) as error:
        raise ConsentRefused("consent_invalid", jti) from error
    if claims["aud"] != str(client.identifier):
        # One client per token: a list of audiences (that PyJWT accepts when ours is among them)
        # would let every client named use the same consent.
        raise ConsentRefused("consent_audience", jti)
    issued, expires = claims["iat"], claims["exp"]
    if (
        not isinstance(issued, int | float)
        or not isinstance(expires, int | float)
        or not isinstance(claims["jti"], str)
    ):
        raise ConsentRefused("consent_invalid", jti)
    if expires - issued > max_lifetime().total_seconds():
        raise ConsentRefused("consent_lifetime", jti)
    scope = claims.get("scope", "")
    scopes = scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else []
    if Scope.RECORDS_READ not in scopes:
        raise ConsentRefused("consent_scope", jti)
    if claims.get("purpose") != purpose:
        raise ConsentRefused("consent_purpose", jti)
    subject = claims["sub"]
    if not isinstance(subject, str) or not personal_id_valid(subject):
        raise ConsentRefused("consent_invalid", jti)
    if personal_id is not None and subject != personal_id:
        raise ConsentRefused("consent_subject", jti)
    return Consent(
        issuer=issuer.issuer,
        subject=subject,
        audience=str(client.identifier),
        purpose=purpose,
        jti=jti,
        expires_at=dt.datetime.fromtimestamp(expires, tz=dt.UTC),
    )
