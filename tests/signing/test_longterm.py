"""Signatures that still verify when their certificates have expired and been revoked: XAdES-T
(timestamps from the reference TSA, a real process over HTTP), XAdES-LT (chains and CRLs embedded
at issue, verified with no CRL source at all) and XAdES-LTA (archive timestamps renewing a
lapsing TSA certificate). The clock is moved by the verifier's `now`; the revocations are CRLs
with the dates we give them. xmlsec1 checks every signature node of every document too.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from signing import ca
from signing.choices import ProblemCode
from signing.longterm import (
    XADES141,
    ValidationData,
    add_archive_timestamps,
    embedded_values,
    timestamp_tokens,
)
from signing.profile import (
    HOMEROOM_TEACHER,
    PRINCIPAL,
    ROLES,
    SEAL,
    existing_signatures,
    sign_year_record,
    timestamp_input,
)
from signing.timestamps import Timestamper, token_read
from signing.verify import all_valid, verify_year_record
from tests.reference.tsa import TsaService
from tests.signing.xmlsec import tool, write_pems, xmlsec1_results
from tests.transcripts.test_document import secondary_record
from transcripts.document import year_record_xml

NOW = dt.datetime.now(dt.UTC)


class World:
    """A CA with three signers, the reference TSA, and the documents they make."""

    def __init__(self, tsa: TsaService):
        self.tsa = tsa
        self.dev = ca.dev_ca("Học bạ số (dài hạn)")
        self.signers = {
            HOMEROOM_TEACHER: ca.issue_person(
                self.dev, common_name="Lê Thị Mỹ Duyên", title="Giáo viên chủ nhiệm"
            ),
            PRINCIPAL: ca.issue_person(self.dev, common_name="Trần Văn Hùng", title="Hiệu trưởng"),
            SEAL: ca.issue_organisation(self.dev, name="Trường THCS Kim Đồng"),
        }
        self.timestamper = Timestamper(tsa.url)
        self.tsa_root = x509.load_pem_x509_certificate(tsa.roots_file.read_bytes())

    def tsa_crl(self) -> x509.CertificateRevocationList:
        with urllib.request.urlopen(self.tsa.crl_url, timeout=10) as answer:  # noqa: S310 - the test's TSA
            return x509.load_der_x509_crl(answer.read())

    def crl(self, revoked=()) -> x509.CertificateRevocationList:
        return ca.issue_crl(self.dev, revoked)

    def issue(self, *, crl=None) -> bytes:
        """The record signed by the three, each timestamped; LT data added at the seal."""
        xml = year_record_xml(secondary_record())
        data = ValidationData(
            certificates=(self.dev.root_cert, self.tsa_root), crls=(crl or self.crl(), self.tsa_crl())
        )
        for role in ROLES:
            issued = self.signers[role]
            xml = sign_year_record(
                xml,
                key=issued.key,
                cert=issued.cert,
                chain=issued.chain,
                role=role,
                timestamper=self.timestamper,
                validation_data=data if role == SEAL else None,
            )
        return xml

    def verify(self, xml: bytes, *, crls=(), now=None, tsa_roots=None):
        return verify_year_record(
            xml,
            trust_roots=[self.dev.root_cert],
            crls=list(crls),
            tsa_roots=[self.tsa_root] if tsa_roots is None else tsa_roots,
            now=now,
        )


@pytest.fixture
def world(tsa_service) -> World:
    return World(tsa_service)


def test_each_signature_carries_a_timestamp_over_its_signature_value_and_lt_data(world, tmp_path):
    xml = world.issue()
    root = etree.fromstring(xml)
    signatures = existing_signatures(root)
    assert len(signatures) == 3
    for signature in signatures:
        tokens = timestamp_tokens(signature)
        assert len(tokens) == 1
        info = token_read(tokens[0])
        assert not info.problems and abs((info.time - dt.datetime.now(dt.UTC)).total_seconds()) < 600
        certs, crls = embedded_values(signature)
        assert world.dev.root_cert in certs and world.tsa_root in certs  # the roots, for the archive
        assert {c.issuer for c in crls} >= {world.dev.issuing_cert.subject}
    reports = world.verify(xml)  # no CRL source: what the document carries is enough
    assert all_valid(reports), [r.problems for r in reports]
    assert [r.level for r in reports] == ["LT", "LT", "LT"]
    assert all(r.timestamp is not None and "TSA" in r.timestamp_authority for r in reports)
    # The independent verifiers: xmlsec1 on every ds:Signature node, with the dev CA pinned; and
    # OpenSSL's RFC 3161 check of every token over the exclusive C14N of its SignatureValue.
    pems = write_pems(world.dev, tmp_path / "pems")
    assert xmlsec1_results(xml, pems, tmp_path) == [True, True, True]
    openssl = tool("openssl", "openssl")
    for n, signature in enumerate(signatures):
        (tmp_path / f"value-{n}").write_bytes(timestamp_input(signature))
        (tmp_path / f"token-{n}.der").write_bytes(timestamp_tokens(signature)[0])
        check = subprocess.run(
            [
                openssl,
                "ts",
                "-verify",
                "-token_in",
                "-in",
                str(tmp_path / f"token-{n}.der"),
                "-data",
                str(tmp_path / f"value-{n}"),
                "-CAfile",
                str(world.tsa.roots_file),
                "-untrusted",
                str(world.tsa.data_dir / "ca" / "issuing.pem"),
            ],
            capture_output=True,
            text=True,
        )
        assert "Verification: OK" in check.stdout, check.stdout + check.stderr
    # ...and it refuses a token checked against another signature's value.
    check = subprocess.run(
        [
            openssl,
            "ts",
            "-verify",
            "-token_in",
            "-in",
            str(tmp_path / "token-0.der"),
            "-data",
            str(tmp_path / "value-1"),
            "-CAfile",
            str(world.tsa.roots_file),
            "-untrusted",
            str(world.tsa.data_dir / "ca" / "issuing.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert "Verification: OK" not in check.stdout


def test_expired_then_revoked_after_the_timestamp_still_valid_offline_with_the_reasons(world):
    xml = world.issue()
    # Two years on: every signer's certificate (one year) has expired.
    later = NOW + dt.timedelta(days=730)
    reports = world.verify(xml, now=later)
    assert all_valid(reports), [r.problems for r in reports]
    for report in reports:
        assert ProblemCode.EXPIRED_SINCE in [n.code for n in report.notes]
    # Then their CA revokes all three, dated after the timestamps (as a key compromise found later).
    revoked_on = NOW + dt.timedelta(days=30)
    crl = world.crl([(s.cert.serial_number, revoked_on) for s in world.signers.values()])
    reports = world.verify(xml, crls=[crl], now=later)
    assert all_valid(reports), [r.problems for r in reports]
    for report in reports:
        codes = [n.code for n in report.notes]
        assert ProblemCode.REVOKED_SINCE in codes and ProblemCode.EXPIRED_SINCE in codes
        assert revoked_on.date().isoformat() in " ".join(n.detail for n in report.notes)
    # Without the timestamps the same document would not hold: baseline B refuses a revocation
    # at any date. (Strip the timestamp and LT data: the signatures' own bytes are untouched.)
    stripped = etree.fromstring(xml)
    for unsigned in stripped.iter("{http://uri.etsi.org/01903/v1.3.2#}UnsignedProperties"):
        unsigned.getparent().remove(unsigned)
    reports = world.verify(etree.tostring(stripped, method="c14n"), crls=[crl], now=later)
    assert not all_valid(reports)
    assert all(ProblemCode.REVOKED in r.codes and r.level == "B" for r in reports)


def test_revoked_before_its_timestamp_fails(world):
    """The homeroom teacher's certificate was revoked an hour before she signed: her signature
    (and only hers) fails, even though the CRL embedded at issue is the one that says so."""
    teacher = world.signers[HOMEROOM_TEACHER].cert
    crl = world.crl([(teacher.serial_number, NOW - dt.timedelta(hours=1))])
    xml = world.issue(crl=crl)
    reports = world.verify(xml)  # offline: the embedded CRL
    assert [r.ok for r in reports] == [False, True, True]
    assert ProblemCode.REVOKED in reports[0].codes
    assert reports[0].timestamp is not None  # the timestamp holds; the revocation came before it


def test_a_timestamp_over_other_data_or_from_an_untrusted_tsa_fails(world):
    xml = world.issue()
    root = etree.fromstring(xml)
    first, second = existing_signatures(root)[:2]
    # Swap the two signatures' timestamps: each token is genuine but over the other's value.
    path = ".//{http://uri.etsi.org/01903/v1.3.2#}EncapsulatedTimeStamp"
    a, b = first.find(path), second.find(path)
    a.text, b.text = b.text, a.text
    reports = world.verify(etree.tostring(root, method="c14n"))
    assert ProblemCode.TIMESTAMP_INVALID in reports[0].codes
    assert ProblemCode.TIMESTAMP_INVALID in reports[1].codes
    assert reports[2].ok
    # A TSA the portal does not pin (the signers' root is not a TSA root).
    reports = world.verify(xml, tsa_roots=[world.dev.root_cert])
    assert all(ProblemCode.TIMESTAMP_UNTRUSTED in r.codes for r in reports)


def test_archive_timestamp_renews_a_lapsing_tsa_certificate(world, tmp_path):
    """Six years on, the TSA's certificate (five years) has expired: the proof of time lapses.
    An archive timestamp added before then by a TSA with a longer-lived certificate carries it."""
    xml = world.issue()
    later = NOW + dt.timedelta(days=6 * 365)
    reports = world.verify(xml, now=later)
    assert all(ProblemCode.TIMESTAMP_EXPIRED in r.codes for r in reports)
    with TsaService(tsa_days=9 * 365) as renewed:
        renewed_root = x509.load_pem_x509_certificate(renewed.roots_file.read_bytes())
        with urllib.request.urlopen(renewed.crl_url, timeout=10) as answer:  # noqa: S310
            renewed_crl = x509.load_der_x509_crl(answer.read())
        root = etree.fromstring(xml)
        data = ValidationData(
            certificates=(world.dev.root_cert, world.tsa_root, renewed_root),
            crls=(world.crl(), world.tsa_crl(), renewed_crl),
        )
        assert add_archive_timestamps(root, timestamper=Timestamper(renewed.url), data=data) == 3
        archived = etree.tostring(root, method="c14n")
    reports = world.verify(archived, now=later, tsa_roots=[world.tsa_root, renewed_root])
    assert all_valid(reports), [r.problems for r in reports]
    assert [(r.level, r.archive_timestamps) for r in reports] == [("LTA", 1)] * 3
    assert len(etree.fromstring(archived).findall(f".//{{{XADES141}}}ArchiveTimeStamp")) == 3
    # Tampering with what the archive timestamp covers (an embedded CRL of the first signature)
    # breaks it.
    tampered = etree.fromstring(archived)
    value = tampered.find(".//{http://uri.etsi.org/01903/v1.3.2#}EncapsulatedCRLValue")
    value.text = base64.b64encode(world.crl([(1234, NOW)]).public_bytes(Encoding.DER)).decode()
    reports = world.verify(
        etree.tostring(tampered, method="c14n"), now=later, tsa_roots=[world.tsa_root, renewed_root]
    )
    assert not reports[0].ok
    # Ten years on, the renewed TSA's certificate has lapsed as well: renew again, or it lapses.
    reports = world.verify(
        archived, now=NOW + dt.timedelta(days=10 * 365), tsa_roots=[world.tsa_root, renewed_root]
    )
    assert all(ProblemCode.TIMESTAMP_EXPIRED in r.codes for r in reports)
    pems = write_pems(world.dev, tmp_path / "pems")
    assert xmlsec1_results(archived, pems, tmp_path) == [True, True, True]
