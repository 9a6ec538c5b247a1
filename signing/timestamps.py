"""RFC 3161 timestamps: asking the configured TSA for tokens, and reading a token back.

- `timestamper()`: the `Timestamper` of `HOCBA_TSA_URL` (None when no TSA is configured), one per
  process, over one pooled keep-alive httpx client with explicit timeouts.
  `Timestamper.stamp(data)` asks for a token over SHA-256(data) with a fresh nonce and certReq,
  and checks the answer (granted, our imprint, our nonce, a token that holds) before handing back
  the token's DER (a CMS ContentInfo). `stamp_many` asks for several at once, a few in parallel.
  A TSA that cannot be reached, times out or answers 5xx/429 is a retryable
  `BackendError("tsa_unavailable")`: a signing batch pauses and tries again; a refusal is permanent
  (`tsa_refused`).
- `token_read(der, data)`: what a token says (its time, its TSA certificate and the certificates
  it carries), with the problems of the token itself: not a timestamp token, an imprint that is
  not SHA-256(data), a CMS signature or message digest that does not hold, a signer certificate
  that is not the one the token names (ESS signingCertificateV2) or not for timestamping.
  Whether the TSA's certificate is trusted, valid and unrevoked at that time is judged by
  signing.verify, with the same path validation as the signers'.

pyHanko's CMS helpers check the signature (validate_sig_integrity); asn1crypto does the ASN.1.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings
from pyhanko.sign.validation.generic_cms import validate_sig_integrity

from .backends import BackendError

CONTENT_TYPE = "application/timestamp-query"
# Requests in flight for stamp_many (HOCBA_TSA_PARALLEL): a chunk's timestamps cost its round
# trips divided by this. 16: with a TSA 80 ms away, 10-13 ms a record instead of 24-33 with 4
# (docs/benchmarks.md "Signing at scale"); a TSA's rate limit may ask for fewer.
PARALLEL = 16
EKU_TIME_STAMPING = "time_stamping"


class Timestamper:
    """A client of one RFC 3161 service (HTTP POST of a DER TimeStampReq)."""

    def __init__(self, url: str, *, timeout: float = 10.0, parallel: int | None = None):
        self.url = url
        self.parallel = max(1, parallel or PARALLEL)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=self.parallel, max_keepalive_connections=self.parallel),
        )

    def close(self) -> None:
        self._client.close()

    def stamp(self, data: bytes) -> bytes:
        """The DER of a checked timestamp token over SHA-256(data)."""
        digest = hashlib.sha256(data).digest()
        nonce = int.from_bytes(secrets.token_bytes(8), "big")
        request = tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
                "nonce": nonce,
                "cert_req": True,
            }
        )
        try:
            response = self._client.post(
                self.url, content=request.dump(), headers={"Content-Type": CONTENT_TYPE}
            )
        except httpx.HTTPError as error:
            raise BackendError(
                "tsa_unavailable", f"Timestamping service unreachable: {error}", True
            ) from error
        if response.status_code >= 500 or response.status_code == 429:
            raise BackendError(
                "tsa_unavailable", f"Timestamping service answered HTTP {response.status_code}", True
            )
        if response.status_code != 200:
            raise BackendError("tsa_refused", f"Timestamping service answered HTTP {response.status_code}")
        try:
            reply = tsp.TimeStampResp.load(response.content, strict=True)
            status = reply["status"]["status"].native
        except (ValueError, TypeError) as error:
            raise BackendError("tsa_refused", f"Not a timestamp reply: {error}") from error
        if status not in ("granted", "granted_with_mods"):
            text = "; ".join(reply["status"]["status_string"].native or [])
            raise BackendError("tsa_refused", f"Timestamp refused ({status}): {text}")
        token = reply["time_stamp_token"]
        der = token.dump()
        read = token_read(der, data)
        if read.problems:
            raise BackendError(
                "tsa_refused", f"The timestamp token does not hold: {'; '.join(read.problems)}"
            )
        if read.nonce != nonce:
            raise BackendError("tsa_refused", "The timestamp token answers another request (nonce)")
        return der

    def stamp_many(self, items: Sequence[bytes]) -> list[bytes]:
        """Tokens for each of `items`, in order (a few requests in flight at once)."""
        if len(items) <= 1:
            return [self.stamp(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(items))) as pool:
            return list(pool.map(self.stamp, items))


_lock = threading.Lock()
_clients: dict[tuple[str, float, int], Timestamper] = {}


def timestamper() -> Timestamper | None:
    """The configured TSA's client (one per process and URL), or None without HOCBA_TSA_URL."""
    url = (getattr(settings, "HOCBA_TSA_URL", "") or "").strip()
    if not url:
        return None
    timeout = float(getattr(settings, "HOCBA_TSA_TIMEOUT_SECONDS", 10))
    parallel = int(getattr(settings, "HOCBA_TSA_PARALLEL", 0) or PARALLEL)
    with _lock:
        client = _clients.get((url, timeout, parallel))
        if client is None:
            client = _clients[(url, timeout, parallel)] = Timestamper(url, timeout=timeout, parallel=parallel)
        return client


def timestamper_reset() -> None:
    """Forget the clients (after a fork, or when tests change the settings)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


@dataclass(frozen=True)
class TokenInfo:
    """What a timestamp token says; `problems` (English) when the token itself does not hold."""

    time: dt.datetime | None = None
    serial: int | None = None
    nonce: int | None = None
    tsa_cert: x509.Certificate | None = None
    certificates: tuple[x509.Certificate, ...] = ()  # all the token carries, the TSA's included
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tsa_name(self) -> str:
        return self.tsa_cert.subject.rfc4514_string() if self.tsa_cert is not None else ""


@functools.lru_cache(maxsize=256)
def _cert_of(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


@functools.lru_cache(maxsize=256)
def _asn1_of(der: bytes) -> asn1_x509.Certificate:
    # Kept per certificate: asn1crypto caches what it parses on the object (a TSA's certificates
    # come back in every token).
    return asn1_x509.Certificate.load(der)


def _cert(asn1: asn1_x509.Certificate) -> x509.Certificate:
    return _cert_of(asn1.dump())


def token_read(
    der: bytes, data: bytes | None = None, *, extra_certs: Sequence[x509.Certificate] = ()
) -> TokenInfo:
    """Read a timestamp token (DER ContentInfo) and check it holds as a token over `data`.

    The TSA certificate is looked for in the token, then in `extra_certs` (what the signature's
    CertificateValues carry). Never raises on a bad token: its problems are in the answer."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            return TokenInfo(problems=("not a CMS SignedData",))
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            return TokenInfo(problems=("the token does not carry a TSTInfo",))
        tst_bytes = bytes(encap["content"].contents)
        tst = tsp.TSTInfo.load(tst_bytes, strict=True)
        gen_time = tst["gen_time"].native
        imprint = tst["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        signer_infos = signed["signer_infos"]
        carried = [_cert(c.chosen) for c in signed["certificates"] or [] if c.name == "certificate"]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return TokenInfo(problems=(f"not a timestamp token: {error}",))
    problems: list[str] = []
    if gen_time is None or gen_time.tzinfo is None:
        return TokenInfo(problems=("the token has no usable time",))
    if data is not None:
        if algorithm != "sha256":
            problems.append(f"the imprint is {algorithm}, not sha256")
        elif hashed != hashlib.sha256(data).digest():
            problems.append("the token was made over other data (message imprint)")
    if len(signer_infos) != 1:
        return TokenInfo(time=gen_time, problems=(*problems, "a token has exactly one signer"))
    signer_info = signer_infos[0]
    candidates = [*carried, *extra_certs]
    sid = signer_info["sid"]
    tsa_cert = None
    for cert in candidates:
        asn1 = _asn1_of(cert.public_bytes(Encoding.DER))
        if sid.name == "issuer_and_serial_number":
            chosen = sid.chosen
            # Serial first (an int), then the issuer: the same DER, or equal as names (RFC 5280
            # comparison, string preparation: slower, only for a matching serial).
            if chosen["serial_number"].native == asn1.serial_number and (
                chosen["issuer"].dump() == asn1.issuer.dump() or chosen["issuer"] == asn1.issuer
            ):
                tsa_cert = (cert, asn1)
                break
        elif sid.name == "subject_key_identifier" and sid.chosen.native == asn1.key_identifier:
            tsa_cert = (cert, asn1)
            break
    if tsa_cert is None:
        return TokenInfo(time=gen_time, problems=(*problems, "the TSA's certificate is not in the token"))
    cert, asn1 = tsa_cert
    try:
        digest_name = signer_info["digest_algorithm"]["algorithm"].native
        actual = hashlib.new(digest_name, tst_bytes).digest()
        intact, valid = validate_sig_integrity(signer_info, asn1, "tst_info", actual)
    except Exception as error:  # a hostile token must give a reason, not a 500
        intact, valid = False, False
        problems.append(f"the token's signature cannot be checked: {error}")
    else:
        if not intact:
            problems.append("the token's message digest does not match its TSTInfo")
        if not valid:
            problems.append("the token's signature does not hold")
    if not _names_certificate(signer_info, asn1):
        problems.append("the token's signingCertificate does not name its signer")
    usage = asn1.extended_key_usage_value
    if usage is None or EKU_TIME_STAMPING not in usage.native:
        problems.append("the TSA certificate is not for timestamping (extended key usage)")
    nonce = tst["nonce"].native
    return TokenInfo(
        time=gen_time,
        serial=tst["serial_number"].native,
        nonce=nonce,
        tsa_cert=cert,
        certificates=tuple(dict.fromkeys(candidates)),
        problems=tuple(problems),
    )


def _names_certificate(signer_info: cms.SignerInfo, cert: asn1_x509.Certificate) -> bool:
    """ESS signingCertificate(V2) (RFC 5035), as RFC 3161 requires, names `cert`."""
    for attr in signer_info["signed_attrs"]:
        kind = attr["type"].native
        if kind not in ("signing_certificate", "signing_certificate_v2"):
            continue
        for value in attr["values"]:
            for entry in value["certs"]:
                name = (
                    "sha1" if kind == "signing_certificate" else entry["hash_algorithm"]["algorithm"].native
                )
                field_name = "cert_hash"
                if hashlib.new(name, cert.dump()).digest() == entry[field_name].native:
                    return True
        return False
    return False


def token_time(der: bytes) -> dt.datetime | None:
    """Only the time a token states (no checks): for listings."""
    return token_read(der).time
