"""Where signing keys come from. One shape for all backends, handed to
`signing.profile.sign_year_record`:

- a `LoadedKey`: the key, its certificate, the chain up to the root;
- the key is either a `cryptography` private key (PKCS#12 files, `pkcs12.py`) or a `DigestSigner`
  (a PKCS#11 token, `pkcs11.py`; a CSC remote signing service, `csc.py`): an object that signs a
  SHA-256 digest somewhere else and is called exactly like a `cryptography` private key
  (signing.profile calls `key.sign(data, padding=..., algorithm=...)` or
  `key.sign(data, signature_algorithm=ec.ECDSA(...))`, as signxml does).

Each backend registers its loader for one `CertificateBackend` (`@register(...)`, the
`KeyBackend` protocol); `signing.keys` looks the loader up with `backend_for`. Every failure is a
`BackendError(code, message, retryable)`.

Keys are loaded once per worker process, not once per signature (signing.keys).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

if TYPE_CHECKING:
    from ..models import SigningCertificate


class DigestSigner:
    """A private key held elsewhere (a token, a remote service) that signs SHA-256 digests.

    Subclasses set `algorithm` ("rsa" or "ec") and `key_size` (2048, or 256 for P-256), and
    implement `sign_digest(digest)`, which returns the signature as `cryptography` would: for RSA
    PKCS#1 v1.5 bytes, for ECDSA the DER-encoded (r, s). `sign()` has the signature of
    `cryptography`'s private keys, so the profile calls it as it calls theirs.
    """

    algorithm: str = ""
    key_size: int = 0

    @property
    def curve(self):
        return SimpleNamespace(name="secp256r1") if self.algorithm == "ec" else None

    def sign_digest(self, digest: bytes) -> bytes:
        raise NotImplementedError

    def sign(self, data: bytes, padding=None, algorithm=None, signature_algorithm=None) -> bytes:
        chosen = algorithm if algorithm is not None else getattr(signature_algorithm, "algorithm", None)
        if chosen is not None and not isinstance(chosen, hashes.SHA256):
            raise ValueError("Year records are signed with SHA-256 only")
        return self.sign_digest(hashlib.sha256(data).digest())


def public_key_algorithm(public_key) -> tuple[str, int]:
    """("rsa", bits) or ("ec", 256) for a certificate's public key; ValueError otherwise."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1":
        return "ec", 256
    raise ValueError("Only RSA and ECDSA P-256 keys can sign year records")


@dataclass(frozen=True)
class LoadedKey:
    """A signing key ready to use: the key, its certificate and the intermediate certificates."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | DigestSigner
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


class BackendError(Exception):
    """A key backend failed; `code` says why (the portal maps codes to Vietnamese), the message
    says it in words, and `retryable` whether trying the same thing later may succeed.

    Retryable: the service or device is unreachable or failing for a while (connection refused or
    reset, a timeout, HTTP 5xx or 429, a token that stopped answering). Permanent: what needs a
    person or will never change (a wrong PIN or OTP, a revoked or expired credential, a 4xx).
    A retryable failure pauses a batch; a permanent one fails its items (signing.services.runner).
    """

    def __init__(self, code: str, message: str, retryable: bool = False):
        super().__init__(message)
        self.code = code
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        return self._retryable


class KeyLoadError(BackendError):
    """A key could not be loaded (the historical name; a BackendError, permanent unless said)."""


class KeyBackend(Protocol):
    """What every key backend does: unlock the registered certificate's key with the secret the
    signer gave for the batch (a PIN, a SAD) and hand it back as a LoadedKey whose `key` is a
    private key or a DigestSigner. Raises BackendError (retryable or not)."""

    def __call__(
        self, certificate: SigningCertificate, secret: str, expires_at: dt.datetime | None
    ) -> LoadedKey: ...


_REGISTRY: dict[str, KeyBackend] = {}


def register(kind: str) -> Callable[[KeyBackend], KeyBackend]:
    """Decorator: the loader of one `CertificateBackend` (each backend module registers itself).

    `kind` is the CertificateBackend's value, written out: backend modules do not import the
    models (pkcs11.py is loaded without Django by scripts/devenv.py); the registry's test checks
    that every CertificateBackend has exactly its loader (tests/signing/test_backends_registry.py).
    """

    def decorate(loader: KeyBackend) -> KeyBackend:
        if kind in _REGISTRY and _REGISTRY[kind] is not loader:
            raise RuntimeError(f"Two key backends registered for {kind!r}")
        _REGISTRY[kind] = loader
        return loader

    return decorate


def backend_for(kind: str) -> KeyBackend:
    """The registered loader for a certificate's backend; BackendError("unknown_backend") if none."""
    _load_backends()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise KeyLoadError("unknown_backend", f"Unknown key backend {kind!r}") from None


def registered_backends() -> dict[str, KeyBackend]:
    _load_backends()
    return dict(_REGISTRY)


def _load_backends() -> None:
    # Importing a backend module registers it. Imported on first use, not at import time of this
    # package: pkcs11.py loads python-pkcs11 (a C extension) that a web process may never need.
    from . import csc, pkcs11, pkcs12  # noqa: F401
