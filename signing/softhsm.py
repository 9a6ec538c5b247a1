"""SoftHSM2, a software PKCS#11 token, standing in for a school's seal token in `make run` and the tests.

Development and test tooling only, never on a production code path: a province generates its
seal keys on real tokens or HSMs with the vendor's tools, and the portal only reads them
(signing.backends.pkcs11).

    library, token, key_label, cert = seal_token_provision(
        directory=".data/softhsm", ca=dev_ca_ensure(".data/ca"), school_name="Trường Tiểu học Kim Đồng",
        token_label="08100501", user_pin=user_pin, so_pin=so_pin,
    )
    loaded = pkcs11_load(library=library, token_label=token, pin=user_pin, key_label=key_label)

Tokens are initialised from this process (C_InitToken on SoftHSM2's free slot), not by running
`softhsm2-util --init-token --free`: SoftHSM2 reads its token directory once, when the library is
initialised, so a token that softhsm2-util (another process) creates afterwards stays invisible
to a process that already loaded the library, until that process initialises the library again,
which would end every open session, the signing pools' included.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
from pkcs11.util.x509 import decode_x509_certificate

from signing.backends import public_key_algorithm
from signing.backends.pkcs11 import Pkcs11Error, default_library, pkcs11_library
from signing.ca import DevCA, issue_organisation

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

TOKEN_LABEL_BYTES = 32  # CK_TOKEN_INFO.label: 32 bytes, blank padded
# A certificate that expires sooner than this is replaced when the token is provisioned again.
RENEW_BEFORE = dt.timedelta(days=30)

_configured: Path | None = None


def softhsm_configure(directory: str | os.PathLike[str]) -> Path:
    """Point SoftHSM2 at `<directory>/tokens` and return the path of the configuration written.

    Writes `<directory>/softhsm2.conf`, creates the tokens folder (mode 0700) and sets
    os.environ["SOFTHSM2_CONF"]. SoftHSM2 reads SOFTHSM2_CONF once, when the library is
    initialised, that is at the first pkcs11_load (or first function of this module) in the
    process: so call this before, and with one directory per process. Calling it again with the
    same directory is harmless; another directory raises, since a running library would ignore it.
    """
    global _configured
    folder = Path(directory).resolve()
    conf = folder / "softhsm2.conf"
    if _configured is not None and _configured != conf:
        raise RuntimeError(
            f"SoftHSM2 is configured once per process, and this one uses {_configured}, not {conf}"
        )
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf.write_text(
        "# Written by signing.softhsm: development and test tokens.\n"
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    _configured = conf
    return conf


def _library_path() -> str:
    path = default_library()
    if path is None:
        raise Pkcs11Error("no_library", "SoftHSM2 is not installed (Debian package softhsm2)")
    return path


def _token(label: str) -> Any | None:
    try:
        return pkcs11_library(_library_path()).get_token(token_label=label)
    except p11.NoSuchToken:
        return None


@contextmanager
def token_session(*, token_label: str, user_pin: str, rw: bool = False) -> Iterator[Any]:
    """A user session on the token (a python-pkcs11 Session), closed at the end of the block.

    When this process is already logged in to the token (a signing pool is), PKCS#11 refuses a
    second login: the session then shares that login, and closing it does not log the pool out.
    """
    token = _token(token_label)
    if token is None:
        raise Pkcs11Error("no_token", f"No SoftHSM2 token labelled {token_label!r}")
    try:
        session = token.open(rw=rw, user_pin=user_pin)
    except p11.UserAlreadyLoggedIn:
        session = token.open(rw=rw)
    with session:
        yield session


def token_init(*, label: str, so_pin: str, user_pin: str) -> None:
    """A SoftHSM2 token labelled `label`, with its SO PIN and user PIN; nothing to do if a token
    with that label exists already (its PINs are left as they are)."""
    if not 0 < len(label.encode()) <= TOKEN_LABEL_BYTES:
        raise ValueError(f"A token label has 1 to {TOKEN_LABEL_BYTES} bytes: {label!r}")
    if _token(label) is not None:
        return
    lib = pkcs11_library(_library_path())
    free = next(
        (
            slot
            for slot in lib.get_slots(token_present=True)
            if not slot.get_token().flags & TokenFlag.TOKEN_INITIALIZED
        ),
        None,
    )
    if free is None:
        raise RuntimeError("SoftHSM2 offers no free slot for a new token")
    _init_token(_library_path(), free.slot_id, so_pin=so_pin, label=label)
    token = lib.get_token(token_label=label)
    with token.open(rw=True, so_pin=so_pin) as session:
        session.init_pin(user_pin)


def _init_token(library: str, slot_id: int, *, so_pin: str, label: str) -> None:
    """C_InitToken, which python-pkcs11 does not offer. dlopen hands back the library instance
    python-pkcs11 already initialised, so the new token is visible to it at once."""
    init_token = ctypes.CDLL(library).C_InitToken
    init_token.argtypes = (ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
    init_token.restype = ctypes.c_ulong
    pin = so_pin.encode()
    result = init_token(slot_id, pin, len(pin), label.encode().ljust(TOKEN_LABEL_BYTES, b" "))
    if result:
        raise RuntimeError(f"SoftHSM2 refused to initialise token {label!r} (CKR 0x{result:08x})")


def _public_key(obj: Any) -> PublicKey:
    """A token's public key object as a `cryptography` public key."""
    if obj.key_type == KeyType.EC:
        key = load_der_public_key(encode_ec_public_key(obj))
    else:
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        key = rsa.RSAPublicNumbers(exponent, int.from_bytes(obj[Attribute.MODULUS], "big")).public_key()
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise TypeError(f"Unexpected public key on the token: {type(key).__name__}")
    return key


def key_public(*, token_label: str, user_pin: str, key_label: str) -> PublicKey | None:
    """The public key of the pair labelled `key_label` on the token, or None if there is none."""
    with token_session(token_label=token_label, user_pin=user_pin) as session:
        found = list(
            session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: key_label})
        )
        return _public_key(found[0]) if found else None


def key_generate(*, token_label: str, user_pin: str, key_label: str, algorithm: str = "ec") -> PublicKey:
    """A key pair generated on the token, ECDSA P-256 ("ec") or RSA-2048 ("rsa"); its public key.

    The private key is sensitive and never extractable (it can sign, nothing else); the public
    key can verify. Both get CKA_ID = the SHA-1 key identifier of the public key, the usual link
    between a key and its certificate for other PKCS#11 tools.
    """
    if algorithm not in ("ec", "rsa"):
        raise ValueError(f"Unknown key algorithm {algorithm!r}; use 'ec' or 'rsa'")
    with token_session(token_label=token_label, user_pin=user_pin, rw=True) as session:
        existing = session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: key_label})
        if list(existing):
            raise ValueError(f"Token {token_label!r} already holds a key labelled {key_label!r}")
        options: dict[str, Any] = {
            "label": key_label,
            "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "public_template": {Attribute.PRIVATE: False},
            "private_template": {
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            },
        }
        if algorithm == "ec":
            parameters = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
            )
            public, private = parameters.generate_keypair(**options)
        else:
            public, private = session.generate_keypair(KeyType.RSA, 2048, **options)
        public_key = _public_key(public)
        key_id = x509.SubjectKeyIdentifier.from_public_key(public_key).digest
        public[Attribute.ID] = key_id
        private[Attribute.ID] = key_id
    return public_key


def _certificate_template(cert: x509.Certificate, *, label: str, key_id: bytes = b"") -> dict[Any, Any]:
    template = decode_x509_certificate(cert.public_bytes(Encoding.DER))
    template.update({Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.LABEL: label})
    if key_id:
        template[Attribute.ID] = key_id
    return template


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def certificate_store(
    *,
    token_label: str,
    user_pin: str,
    label: str,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
) -> None:
    """Store `cert` on the token under `label`, and each certificate of `chain` not there yet.

    A certificate already under `label` is replaced: pkcs11_load wants exactly one per key. The
    certificate gets the CKA_ID of the key of the same label, if there is one; intermediates are
    labelled with their common name (pkcs11_load finds them by issuer, not by label).
    """
    with token_session(token_label=token_label, user_pin=user_pin, rw=True) as session:
        labelled = {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
        for old in list(session.get_objects(labelled)):
            old.destroy()
        keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}))
        key_id = keys[0][Attribute.ID] if len(keys) == 1 else b""
        session.create_object(_certificate_template(cert, label=label, key_id=key_id))
        present = {
            obj[Attribute.VALUE] for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
        }
        for intermediate in chain:
            if intermediate.public_bytes(Encoding.DER) not in present:
                session.create_object(_certificate_template(intermediate, label=_common_name(intermediate)))


def _stored_certificate(*, token_label: str, user_pin: str, label: str) -> x509.Certificate | None:
    with token_session(token_label=token_label, user_pin=user_pin) as session:
        found = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}))
        return x509.load_der_x509_certificate(found[0][Attribute.VALUE]) if len(found) == 1 else None


def _still_good(cert: x509.Certificate, *, ca: DevCA, school_name: str, public_key: PublicKey) -> bool:
    """Whether a stored certificate can stay: this CA's, this school's, this key's, not expiring."""
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    try:
        cert.verify_directly_issued_by(ca.issuing_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (
        _common_name(cert) == school_name
        and cert.public_key().public_bytes(*spki) == public_key.public_bytes(*spki)
        and cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + RENEW_BEFORE
    )


def seal_token_provision(
    *,
    directory: str | os.PathLike[str],
    ca: DevCA,
    school_name: str,
    token_label: str,
    user_pin: str,
    so_pin: str,
    key_label: str = "seal",
    algorithm: str = "ec",
) -> tuple[str, str, str, x509.Certificate]:
    """A SoftHSM2 token holding a school's seal; returns (library path, token label, key label,
    certificate): what pkcs11_load needs besides the PIN.

    Configures SoftHSM2 in `directory`, initialises the token, generates the key pair on it, has
    the development CA certify the public key (the private key never leaves the token) and
    stores the certificate and the CA's intermediate. Idempotent: a token that already holds the
    key keeps it, and keeps its certificate unless that is missing, from another CA, for another
    school or key, or expires within RENEW_BEFORE; then a new one is issued for the same key.
    """
    softhsm_configure(directory)
    token_init(label=token_label, so_pin=so_pin, user_pin=user_pin)
    public_key = key_public(token_label=token_label, user_pin=user_pin, key_label=key_label)
    if public_key is None:
        public_key = key_generate(
            token_label=token_label, user_pin=user_pin, key_label=key_label, algorithm=algorithm
        )
    elif public_key_algorithm(public_key)[0] != algorithm:
        raise ValueError(
            f"Token {token_label!r} already holds a key labelled {key_label!r} that is not {algorithm!r}"
        )
    cert = _stored_certificate(token_label=token_label, user_pin=user_pin, label=key_label)
    if cert is None or not _still_good(cert, ca=ca, school_name=school_name, public_key=public_key):
        issued = issue_organisation(ca, name=school_name, public_key=public_key)
        certificate_store(
            token_label=token_label, user_pin=user_pin, label=key_label, cert=issued.cert, chain=issued.chain
        )
        cert = issued.cert
    return _library_path(), token_label, key_label, cert
