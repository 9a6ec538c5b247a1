"""PKCS#12 files: a user's certificate and key, uploaded once, stored encrypted, unlocked by PIN.

At rest the PKCS#12 bytes are wrapped once more with the deployment key (Fernet, AES-128-CBC +
HMAC-SHA256), so a database dump alone yields nothing even with a weak PIN. The deployment key is
passed in by the caller (from the environment); only the registered loader, `pkcs12_key`, reads it
(signing.trust).

    sealed = pkcs12_seal(uploaded_bytes, deployment_key)          # store this
    loaded = pkcs12_load_sealed(sealed, deployment_key, pin)      # at signing time
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12

from .. import trust
from . import KeyLoadError, LoadedKey, register

if TYPE_CHECKING:
    from ..models import SigningCertificate

# An uploaded PKCS#12 with a key and a short chain is a few kilobytes.
MAX_PKCS12_BYTES = 64 * 1024


class Pkcs12Error(KeyLoadError):
    """codes: not_pkcs12, wrong_pin, no_key, key_mismatch, unsupported_key, wrong_deployment_key"""


def new_deployment_key() -> bytes:
    """A fresh deployment key (urlsafe base64, 32 bytes) for the environment."""
    return Fernet.generate_key()


def pkcs12_seal(data: bytes, deployment_key: bytes) -> bytes:
    """The PKCS#12 bytes encrypted with the deployment key, for storage."""
    return Fernet(deployment_key).encrypt(data)


def pkcs12_unseal(sealed: bytes, deployment_key: bytes) -> bytes:
    """The PKCS#12 bytes back; Pkcs12Error("wrong_deployment_key") if the key does not open them."""
    try:
        return Fernet(deployment_key).decrypt(sealed)
    except (InvalidToken, ValueError) as error:
        raise Pkcs12Error(
            "wrong_deployment_key", "The stored key cannot be decrypted with this deployment key"
        ) from error


def pkcs12_load(data: bytes, pin: str) -> LoadedKey:
    """Key, certificate and chain from PKCS#12 bytes and the PIN that protects them."""
    if not isinstance(data, bytes) or not data or len(data) > MAX_PKCS12_BYTES or data[0] != 0x30:
        raise Pkcs12Error("not_pkcs12", "Not a PKCS#12 (.p12/.pfx) file")
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, pin.encode())
    except ValueError as error:
        # cryptography says "Invalid password or PKCS12 data"; the structure was checked above,
        # so this is almost always the PIN.
        raise Pkcs12Error("wrong_pin", "Wrong PIN for this key file (or a damaged file)") from error
    if key is None or cert is None:
        raise Pkcs12Error("no_key", "The PKCS#12 file holds no private key with its certificate")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise Pkcs12Error("unsupported_key", "Only RSA and ECDSA keys can sign year records")
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise Pkcs12Error("key_mismatch", "The private key does not belong to the certificate")
    return LoadedKey(key=key, cert=cert, chain=tuple(extra))


def pkcs12_load_sealed(sealed: bytes, deployment_key: bytes, pin: str) -> LoadedKey:
    """`pkcs12_load` of stored (sealed) bytes."""
    return pkcs12_load(pkcs12_unseal(sealed, deployment_key), pin)


@register("pkcs12")  # CertificateBackend.PKCS12: see signing.backends.register
def pkcs12_key(certificate: SigningCertificate, secret: str, expires_at: dt.datetime | None) -> LoadedKey:
    """The registered certificate's stored key file, unlocked by its PIN (`secret`)."""
    sealed = certificate.sealed_pkcs12
    assert sealed is not None  # constraint signing_certificate_key_located
    return pkcs12_load_sealed(bytes(sealed), trust.deployment_key(), secret)
