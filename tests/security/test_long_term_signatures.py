"""Attacks on the long-term parts of a signature (XAdES-T/LT/LTA), which sit outside what the
signature signs: anyone holding a record can add, change or remove them. Each must leave the
verdict honest (never better than the truth) and never crash the verifier.

- a forged "trust anchor" in CertificateValues does not make an untrusted chain trusted;
- a timestamp from a TSA under the signers' CA (a signing certificate posing as a TSA) or from a
  TSA the portal does not pin is refused; a stolen genuine token of another record too;
- an embedded CRL not signed by the issuer is ignored (cannot revoke, cannot un-revoke);
- hostile bytes: not base64, not DER, a huge number of archive timestamps or certificates: a
  reason, not a 500 and not minutes of work;
- stripping the timestamp makes the verdict stricter (baseline B), never looser.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from reference.tsa.authority import Authority
from signing import ca
from signing.choices import ProblemCode
from signing.longterm import XADES141, embedded_values
from signing.profile import DS, XADES, existing_signatures, timestamp_input
from signing.verify import MAX_ARCHIVE_TIMESTAMPS, all_valid
from tests.signing.test_longterm import NOW, World

V132 = f"{{{XADES}}}"


@pytest.fixture
def world(tsa_service) -> World:
    return World(tsa_service)


def c14n(root) -> bytes:
    return etree.tostring(root, method="c14n")


def _properties(signature):
    return signature.find(f".//{V132}UnsignedSignatureProperties")


def test_a_root_carried_in_the_document_is_not_trusted(tsa_service, world):
    """Signers under a rogue CA whose root travels in every signature's CertificateValues (LT
    data): the portal pins its own roots, so every signature is untrusted."""
    rogue = World(tsa_service)  # a CA of its own, same names
    xml = rogue.issue()
    root = etree.fromstring(xml)
    carried, _crls = embedded_values(existing_signatures(root)[0])
    assert rogue.dev.root_cert in carried
    reports = world.verify(xml)  # pinned: world's root, not the rogue's
    assert all(ProblemCode.UNTRUSTED_ISSUER in r.codes for r in reports)


def test_a_signing_certificate_posing_as_a_tsa_is_refused(world, tmp_path):
    """A token signed by a signer's key (no timeStamping EKU) under a root pinned for timestamps:
    refused, whatever time it states."""
    xml = world.issue()
    root = etree.fromstring(xml)
    authority = Authority(tmp_path / "rogue-tsa")
    impostor = ca.issue_person(world.dev, common_name="Not a TSA", title="x")
    authority.key, authority.cert = impostor.key, impostor.cert
    authority._asn1_cert = asn1_x509.Certificate.load(impostor.cert.public_bytes(Encoding.DER))
    first = existing_signatures(root)[0]
    digest = hashlib.sha256(timestamp_input(first)).digest()
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        }
    )
    forged = authority.token(request, at=NOW - dt.timedelta(days=365))
    first.find(f".//{V132}SignatureTimeStamp/{V132}EncapsulatedTimeStamp").text = base64.b64encode(
        forged.dump()
    ).decode()
    reports = world.verify(c14n(root), tsa_roots=[world.tsa_root, world.dev.root_cert])
    assert not reports[0].ok
    assert {ProblemCode.TIMESTAMP_INVALID, ProblemCode.TIMESTAMP_UNTRUSTED} & set(reports[0].codes)
    assert reports[0].timestamp is None  # the forged time is not taken


def test_an_embedded_crl_not_signed_by_the_issuer_neither_revokes_nor_clears(world):
    xml = world.issue()
    rogue = ca.dev_ca("Học bạ số (dài hạn)")  # same names, other keys
    teacher = world.signers["homeroom_teacher"].cert
    forged = ca.issue_crl(rogue, [(teacher.serial_number, NOW - dt.timedelta(days=1))])
    root = etree.fromstring(xml)
    crl_values = _properties(existing_signatures(root)[0]).find(f"{V132}RevocationValues/{V132}CRLValues")
    etree.SubElement(crl_values, f"{V132}EncapsulatedCRLValue").text = base64.b64encode(
        forged.public_bytes(Encoding.DER)
    ).decode()
    reports = world.verify(c14n(root))
    assert reports[0].ok, reports[0].problems  # the forged revocation is not the CA's word
    # And a genuine revocation is not hidden by the embedded (older, clean) CRL.
    genuine = world.crl([(teacher.serial_number, NOW - dt.timedelta(days=1))])
    reports = world.verify(xml, crls=[genuine])
    assert ProblemCode.REVOKED in reports[0].codes


@pytest.mark.parametrize(
    "damage",
    ["not base64 %%%", base64.b64encode(b"\x30\x82\xff\xff" + b"A" * 64).decode(), ""],
    ids=["not-base64", "truncated-der", "empty"],
)
def test_hostile_tokens_and_values_give_reasons(world, damage):
    xml = world.issue()
    for path in (
        f".//{V132}SignatureTimeStamp/{V132}EncapsulatedTimeStamp",
        f".//{V132}EncapsulatedX509Certificate",
        f".//{V132}EncapsulatedCRLValue",
    ):
        root = etree.fromstring(xml)
        existing_signatures(root)[1].find(path).text = damage
        reports = world.verify(c14n(root))
        assert reports[0].ok and reports[2].ok
        assert not reports[1].ok and reports[1].problems


def test_too_many_archive_timestamps_or_values_are_refused_unread(world):
    xml = world.issue()
    root = etree.fromstring(xml)
    signature = existing_signatures(root)[0]
    properties = _properties(signature)
    token = signature.find(f".//{V132}SignatureTimeStamp/{V132}EncapsulatedTimeStamp").text
    for _ in range(MAX_ARCHIVE_TIMESTAMPS + 1):
        stamp = etree.SubElement(properties, f"{{{XADES141}}}ArchiveTimeStamp")
        etree.SubElement(
            stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"
        )
        etree.SubElement(stamp, f"{V132}EncapsulatedTimeStamp").text = token
    reports = world.verify(c14n(root))
    assert ProblemCode.ARCHIVE_TIMESTAMP_INVALID in reports[0].codes
    assert "more than" in " ".join(p.detail for p in reports[0].problems)
    assert reports[1].ok and reports[2].ok
    # Padding the validation data: refused unread (and the proof that needed it goes with it).
    root = etree.fromstring(xml)
    values = _properties(existing_signatures(root)[0]).find(f"{V132}CertificateValues")
    cert = values[0].text
    for _ in range(200):
        etree.SubElement(values, f"{V132}EncapsulatedX509Certificate").text = cert
    reports = world.verify(c14n(root))
    assert ProblemCode.MALFORMED in reports[0].codes and not reports[0].ok
    assert reports[1].ok and reports[2].ok


def test_stripping_timestamps_never_helps(world):
    """A signer revoked after signing: with its timestamp, valid with a note; stripped of it, the
    same signature is refused (baseline B: any revocation counts)."""
    xml = world.issue()
    teacher = world.signers["homeroom_teacher"].cert
    crl = world.crl([(teacher.serial_number, NOW + dt.timedelta(hours=1))])
    assert world.verify(xml, crls=[crl])[0].ok
    root = etree.fromstring(xml)
    unsigned = existing_signatures(root)[0].find(f".//{V132}UnsignedProperties")
    unsigned.getparent().remove(unsigned)
    reports = world.verify(c14n(root), crls=[crl])
    assert ProblemCode.REVOKED in reports[0].codes and not all_valid(reports)
    assert isinstance(teacher, x509.Certificate)
