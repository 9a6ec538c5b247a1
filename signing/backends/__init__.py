"""Where signing keys come from. One shape for all backends, handed to
`signing.profile.sign_year_record`:

- a `LoadedKey`: the key, its certificate, the chain up to the root;
- the key is either a `cryptography` private key (PKCS#12 files, `pkcs12.py`) or a `DigestSigner`
  (a PKCS#11 token, `pkcs11.py`; a CSC remote signing service, `csc.py`): an object that signs a
  SHA-256 digest somewhere else and is called exactly like a `cryptography` private key
  (signing.profile calls `key.sign(data, padding=..., algorithm=...)` or
  `key.sign(data, signature_algorithm=ec.ECDSA(...))`, as signxml does).

Keys are loaded once per worker process, not once per signature (signing.keys).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import SimpleNamespace

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa


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


class KeyLoadError(Exception):
    """A key could not be loaded; `code` says why, the message says it in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
