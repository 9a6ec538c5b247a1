"""Where signing keys come from. One shape for all backends: a `LoadedKey` (private key, its
certificate, the chain up to the root), loaded once per worker process and handed to
`signing.profile.sign_year_record`.

Only the PKCS#12 backend exists so far (`pkcs12.py`). PKCS#11 (SoftHSM2) and CSC remote signing
will provide key objects with the same `sign()` / `public_key()` / `key_size` surface as a
`cryptography` private key, so the profile does not change (issue 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass(frozen=True)
class LoadedKey:
    """A signing key ready to use: the key, its certificate and the intermediate certificates."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


class KeyLoadError(Exception):
    """A key could not be loaded; `code` says why, the message says it in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
