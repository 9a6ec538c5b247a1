"""Remote signing in the style of the Cloud Signature Consortium (CSC) API v2: the portal's client.

Teachers' and principals' keys stay with a provider (VNPT SmartCA, Viettel MySign, ...; in
development `reference.csc`); the portal sends SHA-256 hashes and gets signatures back. Approval
is asynchronous and happens once per batch (design.md §4):

    client = CscClient(url, client_secret)                    # cheap: the HTTP pool is per process
    [credential_id] = client.credentials_list(user_id)        # when the user links the account
    credential = client.credentials_info(credential_id)       # certificate, chain, algorithm
    client.send_otp(credential_id)                            # the signer gets an OTP
    sad = client.authorize(credential_id, num_signatures=40, otp=typed_by_the_signer)
    loaded = csc_loaded_key(client, credential, sad)          # then, in the background:
    for xml in batch: sign_year_record(xml, key=loaded.key, cert=loaded.cert, chain=loaded.chain, ...)

The client secret and URL are passed in by the caller; only `configured_client()` (and the
registered loader, which uses it) reads them from the settings.

Transport: httpx, one `httpx.Client` per process (`http_client()`), shared by every CscClient:
a pool of kept-alive connections (a batch of 40 records pays for one TCP handshake, not 40),
explicit timeouts (connect 5 s; read, write and pool wait the client's `timeout`), the system's
trust store for https. httpcore sets TCP_NODELAY on its sockets (httpcore/_backends/sync.py), and
the reference service sets it on its side: a kept-alive exchange never waits on a delayed ACK.
The pool is thread-safe; a client may be shared between threads, each call takes a connection.

Errors are `CscError` (a BackendError) with a stable `code` (the portal maps codes to
Vietnamese). The service's answer is read as CSC v2 writes it: `invalid_otp` by name, the cases
CSC folds into `invalid_request` (unknown credential, bad or expired SAD, expired certificate) by
CSC's own description, and the reference service's names for what CSC leaves unnamed
(otp_locked, sad_exhausted, certificate_revoked). `retryable` is true for what passes: the
service unreachable (refused, reset, timed out), failing (HTTP 5xx) or busy (HTTP 429); every
other refusal (a wrong OTP, a revoked credential, any other 4xx) is permanent.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from django.conf import settings

from . import DigestSigner, KeyLoadError, LoadedKey, public_key_algorithm, register

if TYPE_CHECKING:
    from ..models import SigningCertificate

SHA256_OID = "2.16.840.1.101.3.4.2.1"
SIGN_ALGO_OIDS = {
    "rsa": "1.2.840.113549.1.1.1",  # rsaEncryption: PKCS#1 v1.5 over the hash of hashAlgorithmOID
    "ec": "1.2.840.10045.4.3.2",  # ecdsa-with-SHA256
}
API = "/csc/v2/"

# What each code means, in English; the service's own words follow in parentheses.
MESSAGES = {
    "unreachable": "The remote signing service cannot be reached",
    "server_error": "The remote signing service failed",
    "unauthorised_client": "The remote signing service refused the portal's client secret",
    "unknown_credential": "The remote signing service has no such credential",
    "wrong_otp": "The OTP is wrong, expired or already used",
    "otp_locked": "Too many wrong OTPs: request a new OTP",
    "sad_invalid": "The signing approval is not valid for this credential",
    "sad_expired": "The signing approval has expired: approve the batch again",
    "sad_exhausted": "The signing approval covers no more signatures: approve the rest again",
    "certificate_revoked": "The signing certificate is revoked",
    "certificate_expired": "The signing certificate has expired",
    "unsupported_key": "The credential's key cannot sign year records (RSA-2048+ or ECDSA P-256 only)",
    "busy": "The remote signing service is busy (too many requests)",
    "protocol": "The remote signing service answered something unexpected",
}
RETRYABLE = frozenset({"unreachable", "server_error", "busy"})
# Hashes one signHash call carries at most (HOCBA_CSC_MAX_HASHES), further capped by the
# credential's `multisign`: the reference service accepts up to 1000 (reference.csc MULTISIGN).
DEFAULT_MAX_HASHES = 1000

# CSC v2 error names with one meaning.
_BY_ERROR = {
    "invalid_otp": "wrong_otp",
    "invalid_token": "unauthorised_client",
    "server_error": "server_error",
    # Not named by CSC; the reference service's names.
    "otp_locked": "otp_locked",
    "sad_exhausted": "sad_exhausted",
    "certificate_revoked": "certificate_revoked",
}
# CSC v2 folds these into invalid_request and tells them apart by description (section 11).
_BY_CSC_DESCRIPTION = {
    "Invalid parameter credentialID": "unknown_credential",
    "Invalid parameter SAD": "sad_invalid",
    "SAD expired": "sad_expired",
    "Signing certificate is expired": "certificate_expired",
}


class CscError(KeyLoadError):
    """A remote signing call failed. codes: see MESSAGES; retryable: the codes in RETRYABLE."""

    def __init__(self, code: str, detail: str = "", *, status: int | None = None):
        message = MESSAGES.get(code, code)
        super().__init__(code, f"{message} ({detail})" if detail else message, code in RETRYABLE)
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class CscCredential:
    """A credential as the service describes it; dates and serial read from the certificate."""

    credential_id: str
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # intermediates only: a root is never carried along
    algorithm: str  # "rsa" or "ec"
    key_size: int
    status: str  # the service's certificate status: "valid", "expired", "revoked", ...
    key_status: str  # "enabled" or "disabled"
    multisign: int  # the most signatures one authorisation may cover

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    @property
    def not_before(self) -> dt.datetime:
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc


@dataclass(frozen=True)
class Sad:
    """Signature activation data: the signer's approval of `num_signatures` signatures."""

    token: str = field(repr=False)  # a bearer credential for signing: keep it out of logs
    credential_id: str
    num_signatures: int
    expires_at: dt.datetime  # by our clock, from the service's expiresIn

    def expired(self, at: dt.datetime | None = None) -> bool:
        return (at or dt.datetime.now(dt.UTC)) >= self.expires_at


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise CscError("protocol", f"{what} is not a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise CscError("protocol", f"{what} is not Base64") from error


def _error_code(status: int, error: str, description: str) -> str:
    if status == 401:
        return "unauthorised_client"
    if status == 429:
        return "busy"
    if status >= 500:
        return "server_error"
    if error in _BY_ERROR:
        return _BY_ERROR[error]
    if error == "invalid_request" and description.strip() in _BY_CSC_DESCRIPTION:
        return _BY_CSC_DESCRIPTION[description.strip()]
    return "protocol"  # the request was refused as malformed: our side or theirs is wrong


def ecdsa_der(signature: bytes, key_bytes: int = 32) -> bytes:
    """An ECDSA signature as DER (r, s). Some providers answer the raw r||s (as XML-DSig writes
    it); DigestSigner promises DER, which signxml converts back."""
    try:
        r, s = decode_dss_signature(signature)
        if encode_dss_signature(r, s) == signature:
            return signature
    except ValueError:
        pass
    if len(signature) == 2 * key_bytes:
        return encode_dss_signature(
            int.from_bytes(signature[:key_bytes], "big"), int.from_bytes(signature[key_bytes:], "big")
        )
    raise CscError("protocol", f"an ECDSA signature of {len(signature)} bytes is neither DER nor r||s")


CONNECT_TIMEOUT = 5.0
# Connections idle longer than this are closed by us, before the service's idle timeout (the
# reference service: 60 s) can close them under a request.
KEEPALIVE_EXPIRY = 30.0

_http: httpx.Client | None = None
_http_lock = threading.Lock()


def http_client() -> httpx.Client:
    """The process's one HTTP client (a pool of kept-alive connections), made on first use."""
    global _http
    with _http_lock:
        if _http is None:
            _http = httpx.Client(
                timeout=httpx.Timeout(10.0, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(
                    max_connections=32, max_keepalive_connections=16, keepalive_expiry=KEEPALIVE_EXPIRY
                ),
                verify=ssl.create_default_context(),  # the system's trust store, as before httpx
                trust_env=False,  # no proxy from the environment between the portal and its signer
                follow_redirects=False,
            )
        return _http


def _forget_after_fork() -> None:
    # A forked worker must not share its parent's sockets: it makes its own pool on first use.
    global _http
    _http = None


os.register_at_fork(after_in_child=_forget_after_fork)


class CscClient:
    """A client of one CSC v2 service for one relying party (the portal).

    Requests go through the process's pooled `http_client()` (or `http`, if given). Thread-safe.
    `close()` (or `with`) closes only an `http` client it was given: the process's pool stays.
    """

    def __init__(
        self, base_url: str, client_secret: str, timeout: float = 10, *, http: httpx.Client | None = None
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Not an http(s) URL: {base_url!r}")
        if not client_secret:
            raise ValueError("A client secret is needed")
        self.base_url = base_url.rstrip("/")
        self._secret = client_secret
        self.timeout = timeout
        self._timeout = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        self._http = http

    def __repr__(self) -> str:
        return f"CscClient({self.base_url!r})"  # never the secret

    def __enter__(self) -> CscClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # --- Transport ------------------------------------------------------------------------

    def _exchange(self, url: str, payload: bytes) -> tuple[int, bytes]:
        headers = {
            "Authorization": f"Bearer {self._secret}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        http = self._http or http_client()
        try:
            try:
                response = http.post(url, content=payload, headers=headers, timeout=self._timeout)
            except httpx.RemoteProtocolError:
                # The service closed a kept-alive connection as we sent on it (an idle timeout, a
                # restart): once more, on a new one. Had it acted on the request before closing,
                # a signHash would count twice against the SAD: the approval carries spares.
                response = http.post(url, content=payload, headers=headers, timeout=self._timeout)
        except httpx.TransportError as error:  # refused, reset, timed out, DNS, garbage
            detail = str(error) or type(error).__name__
            raise CscError("unreachable", f"{self.base_url}: {detail}") from error
        return response.status_code, response.content

    def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a CSC method; its JSON answer, or CscError with the mapped code."""
        payload = json.dumps(body).encode()
        status, data = self._exchange(f"{self.base_url}{API}{method}", payload)
        if status == 204:
            return {}
        try:
            answer = json.loads(data) if data else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            answer = None
        if not isinstance(answer, dict):
            code = "busy" if status == 429 else "protocol" if status < 500 else "server_error"
            raise CscError(code, f"HTTP {status} from {method}, not JSON", status=status)
        if status == 200:
            return answer
        error = str(answer.get("error", ""))
        description = str(answer.get("error_description", ""))
        code = _error_code(status, error, description)
        raise CscError(code, f"{method}: HTTP {status} {error}: {description}", status=status)

    # --- CSC v2 ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The service's self-description (name, methods, algorithms): a connectivity check."""
        return self._call("info", {})

    def credentials_list(self, user_id: str) -> list[str]:
        """The user's credential ids at this service (often exactly one)."""
        answer = self._call("credentials/list", {"userID": user_id})
        ids = answer.get("credentialIDs")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CscError("protocol", "credentials/list: no list of credentialIDs")
        return ids

    def credentials_info(self, credential_id: str) -> CscCredential:
        """The credential's certificate and chain, algorithm and status."""
        answer = self._call(
            "credentials/info", {"credentialID": credential_id, "certificates": "chain", "certInfo": True}
        )
        key, cert_part = answer.get("key"), answer.get("cert")
        if not isinstance(key, dict) or not isinstance(cert_part, dict):
            raise CscError("protocol", "credentials/info: no key or cert")
        encoded = cert_part.get("certificates")
        if not isinstance(encoded, list) or not encoded:
            raise CscError("protocol", "credentials/info: no certificates")
        try:
            certs = [x509.load_der_x509_certificate(_unb64(c, "a certificate")) for c in encoded]
        except ValueError as error:
            raise CscError("protocol", f"credentials/info: unreadable certificate ({error})") from error
        leaf = certs[0]
        try:
            algorithm, key_size = public_key_algorithm(leaf.public_key())
        except ValueError as error:
            raise CscError("unsupported_key", str(error)) from error
        if algorithm == "rsa" and key_size < 2048:
            raise CscError("unsupported_key", f"RSA-{key_size}")
        multisign = answer.get("multisign", 1)
        return CscCredential(
            credential_id=credential_id,
            cert=leaf,
            # A self-signed root in the answer is dropped: trust comes from the pinned roots,
            # and the signature carries the same intermediates whatever the provider sends.
            chain=tuple(c for c in certs[1:] if c.issuer != c.subject),
            algorithm=algorithm,
            key_size=key_size,
            status=str(cert_part.get("status", "valid")),
            key_status=str(key.get("status", "enabled")),
            multisign=multisign if isinstance(multisign, int) and multisign > 0 else 1,
        )

    def send_otp(self, credential_id: str) -> None:
        """Ask the service to send the signer an OTP for approving a batch."""
        self._call("credentials/sendOTP", {"credentialID": credential_id})

    def authorize(self, credential_id: str, *, num_signatures: int, otp: str) -> Sad:
        """The signer's approval of `num_signatures` signatures, given the OTP they received."""
        if num_signatures < 1:
            raise ValueError("num_signatures must be at least 1")
        asked_at = dt.datetime.now(dt.UTC)
        answer = self._call(
            "credentials/authorize",
            {"credentialID": credential_id, "numSignatures": num_signatures, "OTP": otp},
        )
        token, expires_in = answer.get("SAD"), answer.get("expiresIn", 3600)  # CSC's default
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise CscError("protocol", "credentials/authorize: no SAD")
        # Counted from before the request: our idea of the expiry is never later than theirs.
        expires_at = asked_at + dt.timedelta(seconds=expires_in)
        return Sad(
            token=token, credential_id=credential_id, num_signatures=num_signatures, expires_at=expires_at
        )

    def sign_hashes(
        self, credential_id: str, sad: Sad | str, digests: Sequence[bytes], *, algorithm: str
    ) -> list[bytes]:
        """Signatures of SHA-256 digests, in order: PKCS#1 v1.5 for "rsa", DER (r, s) for "ec".

        Each digest takes one signature from the SAD. The signatures are not checked here (the
        client does not hold the certificate); CscKey checks each against it.
        """
        if algorithm not in SIGN_ALGO_OIDS:
            raise ValueError(f"Unknown algorithm {algorithm!r}")
        if not digests or any(len(d) != 32 for d in digests):
            raise ValueError("SHA-256 digests (32 bytes each) are expected")
        body: dict[str, Any] = {
            "credentialID": credential_id,
            "SAD": sad.token if isinstance(sad, Sad) else sad,
            "hashes": [_b64(d) for d in digests],
            "signAlgo": SIGN_ALGO_OIDS[algorithm],
        }
        if algorithm == "rsa":  # ecdsa-with-SHA256 names its hash; CSC wants it omitted then
            body["hashAlgorithmOID"] = SHA256_OID
        answer = self._call("signatures/signHash", body)
        encoded = answer.get("signatures")
        if not isinstance(encoded, list) or len(encoded) != len(digests):
            raise CscError("protocol", f"signatures/signHash: {len(digests)} signature(s) expected")
        signatures = [_unb64(s, "a signature") for s in encoded]
        return [ecdsa_der(s) for s in signatures] if algorithm == "ec" else signatures


class CscKey(DigestSigner):
    """A credential at a CSC service, approved by a SAD, as the key signxml signs with.

    Each `sign_digest` is one signHash call and takes one signature from the SAD;
    `sign_digests` sends many hashes per call (CSC allows it: `multisign`). Every
    signature is checked against the certificate before it is used: a provider's mistake (wrong
    key, wrong encoding) fails here, not later in a verifier's hands.
    """

    def __init__(self, client: CscClient, credential: CscCredential, sad: Sad):
        if sad.credential_id != credential.credential_id:
            raise ValueError("The SAD was issued for another credential")
        self.client = client
        self.credential = credential
        self.sad = sad
        self.algorithm = credential.algorithm
        self.key_size = credential.key_size

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        # The credential was read with public_key_algorithm, which lets only RSA and EC keys through.
        return cast(rsa.RSAPublicKey | ec.EllipticCurvePublicKey, self.credential.cert.public_key())

    def sign_digest(self, digest: bytes) -> bytes:
        [signature] = self.sign_digests([digest])
        return signature

    def sign_digests(self, digests: Sequence[bytes]) -> list[bytes]:
        """Signatures of many SHA-256 digests, in order: one signHash call per chunk of at most
        `max_hashes()` (the service's `multisign`, capped by HOCBA_CSC_MAX_HASHES), each digest
        taking one signature from the SAD. signing.profile.sign_year_records calls it once for
        all the documents of a batch's chunk, so a class is one or a few round trips."""
        size = self.max_hashes()
        signatures: list[bytes] = []
        for start in range(0, len(digests), size):
            part = list(digests[start : start + size])
            answered = self.client.sign_hashes(
                self.credential.credential_id, self.sad, part, algorithm=self.algorithm
            )
            for digest, signature in zip(part, answered, strict=True):
                self._check(digest, signature)
            signatures += answered
        return signatures

    def max_hashes(self) -> int:
        """How many hashes one signHash call carries: the credential's `multisign` (what the
        service says it accepts), at most HOCBA_CSC_MAX_HASHES."""
        configured = int(getattr(settings, "HOCBA_CSC_MAX_HASHES", DEFAULT_MAX_HASHES) or 1)
        return max(1, min(configured, self.credential.multisign))

    def _check(self, digest: bytes, signature: bytes) -> None:
        public_key = self.public_key()
        prehashed = Prehashed(hashes.SHA256())
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(signature, digest, padding.PKCS1v15(), prehashed)
            else:
                public_key.verify(signature, digest, ec.ECDSA(prehashed))
        except InvalidSignature as error:
            raise CscError(
                "protocol", "a signature does not verify with the credential's certificate"
            ) from error


def csc_loaded_key(client: CscClient, credential: CscCredential, sad: Sad) -> LoadedKey:
    """The credential as a LoadedKey for `sign_year_record`; refuses a revoked or expired one
    up front rather than at the first signHash."""
    if credential.status == "revoked" or credential.key_status == "disabled":
        raise CscError("certificate_revoked", credential.credential_id)
    if credential.status == "expired" or dt.datetime.now(dt.UTC) > credential.not_after:
        raise CscError("certificate_expired", credential.credential_id)
    return LoadedKey(key=CscKey(client, credential, sad), cert=credential.cert, chain=credential.chain)


def configured_client() -> CscClient:
    """The client of the configured CSC remote-signing service (HOCBA_CSC_URL)."""
    url = getattr(settings, "HOCBA_CSC_URL", "")
    if not url:
        raise KeyLoadError("csc_not_configured", "No remote signing service is configured (HOCBA_CSC_URL)")
    return CscClient(url, getattr(settings, "HOCBA_CSC_CLIENT_SECRET", ""))


@register("csc")  # CertificateBackend.CSC: see signing.backends.register
def csc_load(certificate: SigningCertificate, secret: str, expires_at: dt.datetime | None) -> LoadedKey:
    """A CSC credential, approved by the batch's SAD (`secret`) that expires at `expires_at`."""
    client = configured_client()
    credential = client.credentials_info(certificate.csc_credential_id)
    sad = Sad(
        token=secret,
        credential_id=certificate.csc_credential_id,
        num_signatures=0,  # the service counts; the portal only carries the token
        expires_at=expires_at or dt.datetime.max.replace(tzinfo=dt.UTC),
    )
    return csc_loaded_key(client, credential, sad)
