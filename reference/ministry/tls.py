"""Throwaway TLS for the reference repository: a CA, the server's certificate (127.0.0.1,
localhost), the Department's client certificate, and a stranger's (from another CA).

Used by the tests' harness (tests/reference/ministry_service.py) and by `make run`
(scripts/devenv.py, in .data/ministry/tls). Never for anything real.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FILES = ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Học bạ số (kiểm thử)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    server: bool = False,
    days: int = 2,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name = issuer[0].subject if issuer else _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write_pair(folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    key_path = folder / f"{name}.key"
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key_path.chmod(0o600)


def make_tls(folder: Path, *, days: int = 2) -> None:
    """ca.pem, server.pem/.key (127.0.0.1), client.pem/.key (the Department), stranger.pem/.key
    (a client certificate from another CA), valid for `days`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("CA Kho học bạ số (kiểm thử)", ca_key, ca=True, days=days)
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(Encoding.PEM))
    for name, subject, server in (
        ("server", "kho.hocba.test", True),
        ("client", "Sở Giáo dục và Đào tạo Thử Nghiệm", False),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        _write_pair(
            folder, name, _certificate(subject, key, issuer=(ca_cert, ca_key), server=server, days=days), key
        )
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _certificate("Another CA", other_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    _write_pair(folder, "stranger", _certificate("Stranger", key, issuer=(other_ca, other_key)), key)


def tls_ensure(folder: Path, *, days: int = 825) -> Path:
    """The TLS files in `folder`, made on first use (or again once the server's has expired)."""
    server = folder / "server.pem"
    if all((folder / f).exists() for f in FILES):
        cert = x509.load_pem_x509_certificate(server.read_bytes())
        if cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            return folder
    make_tls(folder, days=days)
    return folder
