"""A development certification authority, in memory: root CA, issuing CA, end-entity certificates, CRL.

For `make run`, the demo users, the reference services and the tests. Nothing here is meant for a
real province, whose trust store points at the national CA chain instead (design.md §4). Every
function returns `cryptography` objects; nothing touches the disk or the settings.

- `dev_ca()` makes a root CA and an issuing CA under it.
- `issue_person()` makes a signing certificate for a person (homeroom teacher, principal,
  vice-principal): CN and title in the subject, key usage digitalSignature + nonRepudiation.
- `issue_organisation()` makes one for an organisation (the school seal): O and CN.
- `issue_crl()` makes a CRL from the issuing CA that revokes the given serial numbers.
- `pkcs12_export()` packs a key, its certificate and the chain as PKCS#12 protected by a PIN.

Keys are ECDSA P-256 (fast, the default) or RSA-2048, both allowed by the signature profile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

ALGORITHMS = ("ec", "rsa")

# One year for end-entity certificates, ten and twenty for the CAs: enough for a demo to last.
EE_LIFETIME = dt.timedelta(days=365)
ISSUING_LIFETIME = dt.timedelta(days=3650)
ROOT_LIFETIME = dt.timedelta(days=7300)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_key(algorithm: str = "ec") -> PrivateKey:
    """A fresh private key: "ec" (ECDSA P-256) or "rsa" (RSA-2048)."""
    if algorithm == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"Unknown key algorithm {algorithm!r}; use one of {ALGORITHMS}")


@dataclass(frozen=True)
class Issued:
    """An end-entity key with its certificate and the chain up to (not including) the root."""

    key: PrivateKey | None  # None when the key lives on a token or with a remote service
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class DevCA:
    """A two-level development CA. `roots` is what a trust store pins; `chain` what signers carry."""

    root_key: PrivateKey
    root_cert: x509.Certificate
    issuing_key: PrivateKey
    issuing_cert: x509.Certificate

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return (self.root_cert,)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return (self.issuing_cert,)


def _name(**attributes: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "T": NameOID.TITLE,
        "CN": NameOID.COMMON_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attributes.items() if v])


def _ca_cert(
    *,
    subject: x509.Name,
    key: PrivateKey,
    issuer_cert: x509.Certificate | None,
    issuer_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int | None,
) -> x509.Certificate:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # issuer_key's public key is issuer_cert's (or this certificate's, self-signed), and unlike a
    # certificate's public key it is typed as one that can sign, which the AKI wants.
    aki_source = issuer_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(aki_source), critical=False)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def dev_ca(
    name: str = "Học bạ số (phát triển)",
    *,
    algorithm: str = "ec",
    now: dt.datetime | None = None,
) -> DevCA:
    """A root CA and an issuing CA under it, valid from a day before `now`."""
    start = (now or _now()) - dt.timedelta(days=1)
    root_key = new_key(algorithm)
    root_cert = _ca_cert(
        subject=_name(C="VN", O=name, CN=f"{name} Root CA"),
        key=root_key,
        issuer_cert=None,
        issuer_key=root_key,
        not_before=start,
        not_after=start + ROOT_LIFETIME,
        path_length=1,
    )
    issuing_key = new_key(algorithm)
    issuing_cert = _ca_cert(
        subject=_name(C="VN", O=name, CN=f"{name} Issuing CA"),
        key=issuing_key,
        issuer_cert=root_cert,
        issuer_key=root_key,
        not_before=start,
        not_after=start + ISSUING_LIFETIME,
        path_length=0,
    )
    return DevCA(root_key, root_cert, issuing_key, issuing_cert)


def _key_usage(usages: Iterable[str]) -> x509.KeyUsage:
    wanted = set(usages)
    known = {
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    }
    if wanted - known:
        raise ValueError(f"Unknown key usages: {sorted(wanted - known)}")
    return x509.KeyUsage(
        **{usage: usage in wanted for usage in known},
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    ca: DevCA,
    subject: x509.Name,
    *,
    algorithm: str,
    key_usage: Iterable[str],
    not_before: dt.datetime | None,
    not_after: dt.datetime | None,
    public_key=None,
) -> Issued:
    """A certificate for a fresh key (`algorithm`), or for `public_key` when the private key lives
    elsewhere (a PKCS#11 token, a remote signing service): then Issued.key is None."""
    key: PrivateKey | None = None
    if public_key is None:
        key = new_key(algorithm)
        public_key = key.public_key()
    start = not_before or (_now() - dt.timedelta(hours=1))
    end = not_after or (start + EE_LIFETIME)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.issuing_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuing_key.public_key()), critical=False
        )
        .sign(ca.issuing_key, hashes.SHA256())
    )
    return Issued(key=key, cert=cert, chain=ca.chain)


PERSON_USAGE = ("digital_signature", "content_commitment")  # content_commitment is nonRepudiation


def issue_person(
    ca: DevCA,
    *,
    common_name: str,
    title: str,
    organisation: str = "",
    algorithm: str = "ec",
    key_usage: Iterable[str] = PERSON_USAGE,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    public_key=None,
) -> Issued:
    """A person's signing certificate: CN=name, T=title ("Giáo viên chủ nhiệm", "Hiệu trưởng").

    With `public_key`, the certificate is for that key (held on a token or by a remote service)
    and the result carries no private key."""
    subject = _name(C="VN", O=organisation, T=title, CN=common_name)
    return _issue(
        ca,
        subject,
        algorithm=algorithm,
        key_usage=key_usage,
        not_before=not_before,
        not_after=not_after,
        public_key=public_key,
    )


def issue_organisation(
    ca: DevCA,
    *,
    name: str,
    province: str = "",
    algorithm: str = "ec",
    key_usage: Iterable[str] = PERSON_USAGE,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    public_key=None,
) -> Issued:
    """An organisation's certificate (the school seal): O=CN=the school's name (`public_key`: as
    for issue_person)."""
    subject = _name(C="VN", ST=province, O=name, CN=name)
    return _issue(
        ca,
        subject,
        algorithm=algorithm,
        key_usage=key_usage,
        not_before=not_before,
        not_after=not_after,
        public_key=public_key,
    )


def issue_crl(
    ca: DevCA,
    revoked: Iterable[int | tuple[int, dt.datetime]] = (),
    *,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed by the issuing CA; each entry a serial number, or (serial, revocation date)."""
    start = this_update or _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.issuing_cert.subject)
        .last_update(start)
        .next_update(next_update or (start + dt.timedelta(days=7)))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.issuing_key.public_key()), critical=False
        )
    )
    for entry in revoked:
        serial, when = entry if isinstance(entry, tuple) else (entry, start)
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.issuing_key, hashes.SHA256())


def pkcs12_export(issued: Issued, pin: str, *, friendly_name: str = "") -> bytes:
    """The key, certificate and chain as PKCS#12 bytes encrypted with the PIN (AES-256, PBKDF2)."""
    if not pin:
        raise ValueError("A PKCS#12 export needs a PIN")
    return pkcs12.serialize_key_and_certificates(
        name=(friendly_name or issued.cert.subject.rfc4514_string()).encode(),
        key=issued.key,
        cert=issued.cert,
        cas=list(issued.chain) or None,
        encryption_algorithm=BestAvailableEncryption(pin.encode()),
    )


# --- On disk (make run, the reference services) ----------------------------------------------

CA_FILES = ("root.pem", "root-key.pem", "issuing.pem", "issuing-key.pem")


def dev_ca_save(ca: DevCA, directory) -> None:
    """Write the CA to `directory` (created, mode 0700): certificates and unencrypted keys, PEM.

    Development only: the keys are in clear on the developer's disk, under .data/.
    """
    from pathlib import Path

    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def key_pem(key) -> bytes:
        return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    files = {
        "root.pem": ca.root_cert.public_bytes(Encoding.PEM),
        "root-key.pem": key_pem(ca.root_key),
        "issuing.pem": ca.issuing_cert.public_bytes(Encoding.PEM),
        "issuing-key.pem": key_pem(ca.issuing_key),
    }
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        path.chmod(0o600)


def dev_ca_load(directory) -> DevCA:
    """The CA written by dev_ca_save."""
    from pathlib import Path

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    folder = Path(directory)

    def key_load(name: str) -> PrivateKey:
        key = load_pem_private_key((folder / name).read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):  # dev_ca writes no other
            raise ValueError(f"{folder / name} holds a {type(key).__name__}, not an RSA or EC key")
        return key

    return DevCA(
        root_key=key_load("root-key.pem"),
        root_cert=x509.load_pem_x509_certificate((folder / "root.pem").read_bytes()),
        issuing_key=key_load("issuing-key.pem"),
        issuing_cert=x509.load_pem_x509_certificate((folder / "issuing.pem").read_bytes()),
    )


def dev_ca_ensure(directory, name: str = "Học bạ số (phát triển)") -> DevCA:
    """The CA in `directory`, created there on first use."""
    from pathlib import Path

    if all((Path(directory) / f).exists() for f in CA_FILES):
        return dev_ca_load(directory)
    ca = dev_ca(name)
    dev_ca_save(ca, directory)
    return ca
