"""The CSC v2 protocol of the reference service: credentials, OTP, SAD, signHash; errors as CSC says.

Each operation takes the decoded JSON body and returns the JSON answer (or None for 204), or
raises ApiError. HTTP, the client secret and limits on requests are `server.py`'s business.

Approval, as with the Vietnamese providers: the portal calls `credentials/sendOTP`; the signer
"receives" a 6-digit OTP (here: a line in the service's log); the portal passes it to
`credentials/authorize` with the number of signatures of the batch and gets a SAD (signature
activation data); the batch is then signed in the background by `signatures/signHash` calls,
each consuming one signature per hash from the SAD.

Rules:

- An OTP is valid 5 minutes and once. Five wrong OTPs lock the credential until a new sendOTP.
- A SAD is bound to one credential, lives `sad_lifetime` seconds and signs `numSignatures`
  hashes in all, across any number of signHash calls. Revoking the credential voids its SADs.
- OTPs live in memory only: a restart voids them. SADs are kept in the data directory
  (`sads.json`: a SHA-256 of each token, never the token, with its credential, the signatures
  it still allows and its expiry by the wall clock), so a restart in the middle of a batch does
  not void the signer's approval: the batch goes on without asking the signer again, as with
  the Vietnamese providers, whose approvals outlive a restart of one of their servers. The file
  is replaced (write, rename) on every change, without fsync: it survives the process, not the
  machine.

Errors: where the CSC v2 specification has the case, its error and description, verbatim
(e.g. 400 invalid_request "SAD expired", 400 invalid_otp "The OTP is invalid"), so the portal's
client is written against CSC and not against this service. Where CSC is silent, an error name
of our own: otp_locked, sad_exhausted, certificate_revoked.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding

from .store import Credential, CredentialStore, StoreError

log = logging.getLogger("reference.csc")

SHA256_OID = "2.16.840.1.101.3.4.2.1"
RSA_OID = "1.2.840.113549.1.1.1"  # rsaEncryption: PKCS#1 v1.5 with the hash of hashAlgorithmOID
RSA_SHA256_OID = "1.2.840.113549.1.1.11"  # sha256WithRSAEncryption
ECDSA_SHA256_OID = "1.2.840.10045.4.3.2"
SIGN_ALGOS = {"rsa": (RSA_OID, RSA_SHA256_OID), "ec": (ECDSA_SHA256_OID,)}

OTP_ATTEMPTS = 5
MULTISIGN = 1000  # the most signatures one SAD may authorise: a large school's batch
MAX_TEXT = 256  # names, titles, ids: anything longer is a mistake or an attack


class ApiError(Exception):
    """An answer other than success: HTTP status, CSC error name, description in words."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid(description: str) -> ApiError:
    return ApiError(400, "invalid_request", description)


# Verbatim CSC v2 errors (section 11: credentials/authorize, signatures/signHash).
INVALID_CREDENTIAL = "Invalid parameter credentialID"
INVALID_SAD = "Invalid parameter SAD"
SAD_EXPIRED = "SAD expired"
CERTIFICATE_EXPIRED = "Signing certificate is expired"
OTP_INVALID = "The OTP is invalid"


@dataclass
class _Otp:
    code: str
    expires: float  # time.monotonic()
    wrong: int = 0


@dataclass
class _Sad:
    credential_id: str
    remaining: int
    expires: float  # time.time(): kept across a restart, so by the wall clock


def _token_key(token: str) -> str:
    """How a SAD is known in memory and on disk: the file never holds a usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _generalized_time(when: dt.datetime) -> str:
    """CSC's date format (X.509 GeneralizedTime, UTC): 20250131235959Z."""
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > MAX_TEXT:
        raise invalid(f"Missing (or invalid type) string parameter {name}")
    return value


def _integer(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f"Missing (or invalid type) integer parameter {name}")
    return value


def _instant(body: dict[str, Any], name: str) -> dt.datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise invalid(f"Invalid parameter {name}: an ISO 8601 date-time with its UTC offset is expected")
    return when


def _digest(text: Any) -> bytes:
    if not isinstance(text, str):
        raise invalid("Invalid Base64 hash string parameter")
    try:
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise invalid("Invalid Base64 hash string parameter") from error
    if len(digest) != 32:
        raise invalid("Invalid digest value length")
    return digest


class CscService:
    """The protocol over a CredentialStore. Thread-safe: OTPs and SADs are guarded by one lock."""

    def __init__(
        self,
        store: CredentialStore,
        *,
        sad_lifetime: int = 900,
        otp_lifetime: int = 300,
        delay_ms: int = 0,
    ):
        self.store = store
        self.sad_lifetime = sad_lifetime
        self.otp_lifetime = otp_lifetime
        self.delay = delay_ms / 1000
        self._lock = threading.Lock()
        self._otps: dict[str, _Otp] = {}  # credential id -> the outstanding OTP
        self._sads_path = Path(store.directory) / "sads.json"
        self._sads: dict[str, _Sad] = self._sads_load()  # _token_key(token) -> what it still allows
        self.routes: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
            "/csc/v2/info": self.info,
            "/csc/v2/credentials/list": self.credentials_list,
            "/csc/v2/credentials/info": self.credentials_info,
            "/csc/v2/credentials/sendOTP": self.credentials_send_otp,
            "/csc/v2/credentials/authorize": self.credentials_authorize,
            "/csc/v2/signatures/signHash": self.signatures_sign_hash,
            "/admin/credentials": self.admin_enrol,
            "/admin/credentials/revoke": self.admin_revoke,
        }

    # --- Helpers --------------------------------------------------------------------------

    def _sads_load(self) -> dict[str, _Sad]:
        try:
            state = json.loads(self._sads_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        now = time.time()
        return {k: _Sad(**v) for k, v in state.items() if v["expires"] > now}

    def _sads_save(self) -> None:
        """Replace sads.json with the SADs in memory (the caller holds self._lock)."""
        data = json.dumps({k: asdict(v) for k, v in self._sads.items()}).encode()
        temporary = self._sads_path.with_name(f".{self._sads_path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, self._sads_path)

    def _credential(self, body: dict[str, Any]) -> Credential:
        credential = self.store.get(_text(body, "credentialID"))
        if credential is None:
            raise invalid(INVALID_CREDENTIAL)
        return credential

    def _usable(self, credential: Credential) -> None:
        """Refuse a credential that can no longer sign: revoked, expired, not yet valid."""
        now = dt.datetime.now(dt.UTC)
        if credential.revoked:
            raise ApiError(400, "certificate_revoked", "Signing certificate is revoked")
        if credential.expired(now):
            raise invalid(CERTIFICATE_EXPIRED)
        if credential.not_yet_valid(now):
            raise invalid("Signing certificate is not yet valid")

    def _certificates(self, credential: Credential, which: str = "chain") -> list[str]:
        certs = {"none": [], "single": [credential.cert], "chain": [credential.cert, *self.store.chain]}
        if which not in certs:
            raise invalid("Invalid parameter certificates")
        return [_b64(c.public_bytes(Encoding.DER)) for c in certs[which]]

    def _describe(self, credential: Credential, *, certificates: str, cert_info: bool) -> dict[str, Any]:
        cert = credential.cert
        # The store makes only P-256 ("ec") and RSA ("rsa") keys.
        key_bits = 256 if credential.algorithm == "ec" else cast(rsa.RSAPublicKey, cert.public_key()).key_size
        status = credential.status(dt.datetime.now(dt.UTC))
        described: dict[str, Any] = {
            "description": f"{credential.name} ({credential.title})" if credential.title else credential.name,
            "key": {
                "status": "disabled" if credential.revoked else "enabled",
                "algo": list(SIGN_ALGOS[credential.algorithm]),
                "len": key_bits,
                **({"curve": "1.2.840.10045.3.1.7"} if credential.algorithm == "ec" else {}),
            },
            "cert": {"status": status, "certificates": self._certificates(credential, certificates)},
            "authMode": "explicit",
            "SCAL": "1",
            "OTP": {
                "presence": "true",
                "type": "online",
                "ID": "otp",
                "provider": "reference log",
                "format": "N",
                "label": "Mã OTP",
                "description": "Mã 6 chữ số gửi tới người ký (ở đây: ghi trong nhật ký của dịch vụ)",
            },
            "multisign": MULTISIGN,
            "lang": "vi-VN",
        }
        if cert_info:
            described["cert"] |= {
                "issuerDN": cert.issuer.rfc4514_string(),
                "serialNumber": format(cert.serial_number, "X"),
                "subjectDN": cert.subject.rfc4514_string(),
                "validFrom": _generalized_time(cert.not_valid_before_utc),
                "validTo": _generalized_time(cert.not_valid_after_utc),
            }
        return described

    # --- CSC v2 ---------------------------------------------------------------------------

    def info(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "specs": "2.0.0.2",
            "name": "Dịch vụ ký số từ xa (tham chiếu)",
            "logo": "",
            "region": "VN",
            "lang": "vi-VN",
            "description": "Reference remote signing service of the Học bạ số portal (development only)",
            "authType": ["external"],
            "methods": [path.removeprefix("/csc/v2/") for path in self.routes if path.startswith("/csc/")],
            "signAlgorithms": {"algos": [RSA_OID, RSA_SHA256_OID, ECDSA_SHA256_OID]},
        }

    def credentials_list(self, body: dict[str, Any]) -> dict[str, Any]:
        user_id = _text(body, "userID")
        return {"credentialIDs": [c.credential_id for c in self.store.for_user(user_id)]}

    def credentials_info(self, body: dict[str, Any]) -> dict[str, Any]:
        credential = self._credential(body)
        certificates = body.get("certificates", "single")
        cert_info = body.get("certInfo", False)
        if not isinstance(certificates, str):
            raise invalid("Invalid parameter certificates")
        if not isinstance(cert_info, bool):
            raise invalid("Invalid parameter certInfo")
        return self._describe(credential, certificates=certificates, cert_info=cert_info)

    def credentials_send_otp(self, body: dict[str, Any]) -> None:
        credential = self._credential(body)
        self._usable(credential)
        code = f"{secrets.randbelow(10**6):06d}"
        with self._lock:
            # A new OTP replaces the outstanding one and lifts a lock from wrong attempts.
            self._otps[credential.credential_id] = _Otp(code, time.monotonic() + self.otp_lifetime)
        log.info("OTP for credential %s (user %s): %s", credential.credential_id, credential.user_id, code)
        return None

    def credentials_authorize(self, body: dict[str, Any]) -> dict[str, Any]:
        credential = self._credential(body)
        num_signatures = _integer(body, "numSignatures")
        otp = _text(body, "OTP")
        if num_signatures < 1:
            raise invalid("Invalid value for parameter numSignatures")
        if num_signatures > MULTISIGN:
            raise invalid("Numbers of signatures is too high")
        self._usable(credential)
        now = time.monotonic()
        wall = time.time()
        with self._lock:
            outstanding = self._otps.get(credential.credential_id)
            if outstanding is None:
                raise ApiError(400, "invalid_otp", f"{OTP_INVALID}: none outstanding (used, or never sent)")
            if outstanding.wrong >= OTP_ATTEMPTS:
                raise ApiError(400, "otp_locked", "Too many wrong OTPs: request a new one (sendOTP)")
            if now > outstanding.expires:
                del self._otps[credential.credential_id]
                raise ApiError(400, "invalid_otp", f"{OTP_INVALID}: it has expired")
            if not hmac.compare_digest(otp.encode(), outstanding.code.encode()):
                outstanding.wrong += 1
                left = OTP_ATTEMPTS - outstanding.wrong
                if left == 0:
                    raise ApiError(400, "otp_locked", "Too many wrong OTPs: request a new one (sendOTP)")
                raise ApiError(400, "invalid_otp", f"{OTP_INVALID} ({left} attempt(s) left)")
            del self._otps[credential.credential_id]  # once only
            # Forget SADs past their time, so memory holds only live ones.
            for key in [k for k, s in self._sads.items() if wall > s.expires]:
                del self._sads[key]
            token = secrets.token_urlsafe(32)
            self._sads[_token_key(token)] = _Sad(
                credential.credential_id, num_signatures, wall + self.sad_lifetime
            )
            self._sads_save()
        log.info(
            "SAD for credential %s: %d signature(s), %d s",
            credential.credential_id,
            num_signatures,
            self.sad_lifetime,
        )
        return {"SAD": token, "expiresIn": self.sad_lifetime}

    def _consume(self, token: str, credential_id: str, count: int) -> None:
        """Take `count` signatures from the SAD, or refuse without taking any."""
        now = time.time()
        key = _token_key(token)
        with self._lock:
            sad = self._sads.get(key)
            # Another credential's SAD gets the same answer as a made-up one: it says nothing.
            if sad is None or sad.credential_id != credential_id:
                raise invalid(INVALID_SAD)
            if now > sad.expires:
                del self._sads[key]
                self._sads_save()
                raise invalid(SAD_EXPIRED)
            if sad.remaining < count:
                raise ApiError(
                    400,
                    "sad_exhausted",
                    f"The SAD allows {sad.remaining} more signature(s); {count} were asked",
                )
            sad.remaining -= count  # an exhausted SAD is kept until it expires, to say so
            self._sads_save()

    def signatures_sign_hash(self, body: dict[str, Any]) -> dict[str, Any]:
        credential = self._credential(body)
        token = _text(body, "SAD")
        hashes_in = body.get("hashes")
        if not isinstance(hashes_in, list):
            raise invalid("Missing (or invalid type) array parameter hashes")
        if not hashes_in:
            raise invalid("Empty hash array")
        if len(hashes_in) > MULTISIGN:
            raise invalid("Numbers of signatures is too high")
        digests = [_digest(h) for h in hashes_in]
        sign_algo = _text(body, "signAlgo")
        if sign_algo not in SIGN_ALGOS[credential.algorithm]:
            raise invalid("Invalid parameter signAlgo")
        hash_oid = body.get("hashAlgorithmOID")
        if sign_algo == RSA_OID and hash_oid is None:
            raise invalid("Missing (or invalid type) string parameter hashAlgorithmOID")
        if hash_oid is not None and hash_oid != SHA256_OID:
            raise invalid("Invalid parameter hashAlgorithmOID")
        self._usable(credential)
        self._consume(token, credential.credential_id, len(digests))
        if self.delay:
            time.sleep(self.delay)
        key = self.store.private_key(credential.credential_id)
        prehashed = Prehashed(hashes.SHA256())
        if isinstance(key, rsa.RSAPrivateKey):
            signatures = [key.sign(d, padding.PKCS1v15(), prehashed) for d in digests]
        else:
            signatures = [key.sign(d, ec.ECDSA(prehashed)) for d in digests]  # DER (r, s)
        return {"signatures": [_b64(s) for s in signatures]}

    # --- Enrolment (the provider's own back office; same client secret) --------------------

    def admin_enrol(self, body: dict[str, Any]) -> dict[str, Any]:
        algorithm = body.get("algorithm", "ec")
        if algorithm not in SIGN_ALGOS:
            raise invalid('Invalid parameter algorithm: "ec" or "rsa"')
        try:
            credential = self.store.enrol(
                user_id=_text(body, "userID"),
                name=_text(body, "name"),
                title=_text(body, "title", required=False),
                organisation=_text(body, "organisation", required=False),
                algorithm=algorithm,
                not_before=_instant(body, "notBefore"),
                not_after=_instant(body, "notAfter"),
            )
        except StoreError as error:
            raise invalid(str(error)) from error
        log.info("Enrolled credential %s for user %s", credential.credential_id, credential.user_id)
        return {"credentialID": credential.credential_id, "certificates": self._certificates(credential)}

    def admin_revoke(self, body: dict[str, Any]) -> dict[str, Any]:
        credential_id = _text(body, "credentialID")
        try:
            credential = self.store.revoke(credential_id)
        except StoreError as error:
            raise invalid(INVALID_CREDENTIAL) from error
        with self._lock:
            self._otps.pop(credential_id, None)
            for key in [k for k, s in self._sads.items() if s.credential_id == credential_id]:
                del self._sads[key]
            self._sads_save()
        log.info("Revoked credential %s", credential_id)
        revoked_at = credential.revoked_at.isoformat() if credential.revoked_at else ""
        return {"credentialID": credential_id, "revoked": revoked_at}
