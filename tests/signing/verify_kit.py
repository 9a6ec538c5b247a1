"""Helpers of the verifier's guard tests (test_guards_verify_*.py): one change to a good
document, the problems a report holds, and certificates made with exactly the extensions a
test wants."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing import ca
from signing.choices import Problem, ProblemCode
from signing.profile import DS, XADES
from signing.verify import certificate_problems
from tests.signing.test_profile import c14n, signatures, tree
from transcripts.schema import NAMESPACE

NS = {"ds": DS, "xades": XADES}
NOW = dt.datetime.now(dt.UTC)


def first(xml: bytes, change) -> bytes:
    """The document with `change(signature 1)` applied."""
    root = tree(xml)
    change(signatures(root)[0])
    return c14n(root)


def problems_of(reports, position: int) -> tuple[Problem, ...]:
    return next(r.problems for r in reports if r.position == position)


def details_of(reports, position: int, code: ProblemCode) -> list[str]:
    """The technical details of the problems with this code, at this position."""
    return [p.detail for p in problems_of(reports, position) if p.code == code]


C = ProblemCode


def content_id(xml: bytes) -> str:
    return tree(xml).find(f"{{{NAMESPACE}}}thongtinhocba").get("Id")


def _cert(
    issuer_cert,
    issuer_key,
    *,
    name: str,
    is_ca: bool | None,
    usage: dict | None,
    not_before=None,
    not_after=None,
):
    """A certificate for a fresh P-256 key with exactly these extensions (None: left out)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=30))
    )
    if is_ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    if usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
            ),
            False,
        )
        flags.update(usage)
        builder = builder.add_extension(
            x509.KeyUsage(**flags, encipher_only=False, decipher_only=False), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


SIGNER_USAGE = {"digital_signature": True}


def check(dev, cert, chain=None, *, crls=None, at=None):
    return certificate_problems(
        cert,
        dev.chain if chain is None else chain,
        trust_roots=dev.roots,
        crls=[ca.issue_crl(dev, [])] if crls is None else crls,
        at=at or NOW,
    )
