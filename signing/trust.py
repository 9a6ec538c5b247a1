"""The portal's trust store, its CRLs and the deployment key: configuration, never the system store.

- `HOCBA_TRUST_ROOTS`: PEM files whose certificates are the roots a signer's chain must end in.
  A province points it at the national CA chain (Ban Cơ yếu, the licensed public CAs); `make run`
  points it at the development CA and the reference remote-signing service's CA.
- `HOCBA_TRUST_CRLS`: where the CRLs come from, each a file path or an http(s) URL (DER or PEM).
  They are read at most every `HOCBA_TRUST_CRL_SECONDS` per process; a source that cannot be read
  keeps its last good copy, and with no copy at all its issuer's certificates have no known
  revocation status, which the verifier refuses.
- `HOCBA_TSA_TRUST_ROOTS`: PEM files of the roots a timestamping authority's certificate must
  chain to (signing.timestamps; the TSA itself is `HOCBA_TSA_URL`).
- `HOCBA_DEPLOYMENT_KEY`: the Fernet key that encrypts PKCS#12 files and batch secrets at rest.
  Required outside DEBUG and tests; there it is derived from SECRET_KEY so a developer need not
  set it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

log = logging.getLogger(__name__)

_lock = threading.Lock()
_roots: dict[tuple[str, ...], tuple[x509.Certificate, ...]] = {}
_crls: dict[str, tuple[float, x509.CertificateRevocationList | None]] = {}


def _sources(name: str) -> tuple[str, ...]:
    value = getattr(settings, name, ()) or ()
    if isinstance(value, (str, Path)):
        value = [value]
    return tuple(str(v) for v in value if str(v).strip())


def _pinned(setting: str) -> tuple[x509.Certificate, ...]:
    files = _sources(setting)
    key = (setting, *files)
    with _lock:
        if key not in _roots:
            certs: list[x509.Certificate] = []
            for file in files:
                try:
                    certs.extend(x509.load_pem_x509_certificates(Path(file).read_bytes()))
                except (OSError, ValueError) as error:
                    raise ImproperlyConfigured(f"{setting}: cannot read {file}: {error}") from error
            _roots[key] = tuple(certs)
        return _roots[key]


def trust_roots() -> tuple[x509.Certificate, ...]:
    """The pinned roots of signers (read once per process for a given configuration)."""
    return _pinned("HOCBA_TRUST_ROOTS")


def tsa_roots() -> tuple[x509.Certificate, ...]:
    """The pinned roots of timestamping authorities (HOCBA_TSA_TRUST_ROOTS): a timestamp's
    certificate must chain to one of these, never to a signers' root."""
    return _pinned("HOCBA_TSA_TRUST_ROOTS")


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _fetch(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=5) as response:  # noqa: S310 -- configured URLs only
            return response.read(10 * 1024 * 1024)
    return Path(source).read_bytes()


def crls(*, fresh: bool = False) -> list[x509.CertificateRevocationList]:
    """The CRLs of every configured source, re-read when older than HOCBA_TRUST_CRL_SECONDS."""
    max_age = float(getattr(settings, "HOCBA_TRUST_CRL_SECONDS", 300))
    found = []
    for source in _sources("HOCBA_TRUST_CRLS"):
        with _lock:
            read_at, crl = _crls.get(source, (0.0, None))
        if fresh or crl is None or time.monotonic() - read_at > max_age:
            try:
                crl = _load_crl(_fetch(source))
            except (OSError, ValueError) as error:
                log.warning("CRL source %s cannot be read (%s); keeping the last good copy", source, error)
            else:
                with _lock:
                    _crls[source] = (time.monotonic(), crl)
        if crl is not None:
            next_update = crl.next_update_utc
            if next_update is not None and next_update < now():
                # Still used (the last word of its issuer), but the operator must know: the issuer
                # may have revoked certificates since. Signing and verification go on.
                log.warning("CRL from %s is past its next update (%s)", source, next_update.isoformat())
            found.append(crl)
    return found


def trust_reset() -> None:
    """Forget what was read (after the configuration or a CRL changed: tests, the demo)."""
    with _lock:
        _roots.clear()
        _crls.clear()


def deployment_key() -> bytes:
    """The Fernet key for secrets at rest (PKCS#12 files, batch PINs and authorisations)."""
    key = getattr(settings, "HOCBA_DEPLOYMENT_KEY", "") or ""
    if key:
        return key.encode() if isinstance(key, str) else key
    if settings.DEBUG or getattr(settings, "TESTING", False):
        digest = hashlib.sha256(b"hocba.deployment-key:" + settings.SECRET_KEY.encode()).digest()
        return base64.urlsafe_b64encode(digest)
    raise ImproperlyConfigured("HOCBA_DEPLOYMENT_KEY must be set (a Fernet key) outside DEBUG.")


def seal_secret(value: str) -> bytes:
    return Fernet(deployment_key()).encrypt(value.encode())


def open_secret(sealed: bytes) -> str:
    return Fernet(deployment_key()).decrypt(bytes(sealed)).decode()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def chain_pem(chain: Sequence[x509.Certificate]) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return "".join(c.public_bytes(Encoding.PEM).decode() for c in chain)


def chain_from_pem(text: str) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(text.encode())) if text.strip() else ()
