"""The signature profile, the PKCS#12 backend and the verifier, checked against xmlsec1 too.

Pure: no database. A grade 5 year record (the sample of tests/transcripts/test_document.py) is
signed by the homeroom teacher (RSA-2048), the principal (ECDSA P-256) and the school seal
(ECDSA P-256), with keys from the development CA loaded from PKCS#12. Each signature is then
verified by our verifier and, independently, by xmlsec1 (Debian's xmlsec1, OpenSSL backend).
"""

from __future__ import annotations

import copy
import datetime as dt
import subprocess

import pytest
from lxml import etree

from signing import ca
from signing.backends.pkcs12 import (
    Pkcs12Error,
    new_deployment_key,
    pkcs12_load,
    pkcs12_load_sealed,
    pkcs12_seal,
)
from signing.choices import ProblemCode
from signing.profile import DS, SigningError, content_bytes, sign_year_record
from signing.verify import all_valid, verify_year_record
from tests.signing.xmlsec import (
    write_pems,
    xmllint,
    xmlsec1_results,
)
from tests.transcripts.test_document import primary_record
from transcripts.document import year_record_load, year_record_xml
from transcripts.schema import NAMESPACE, XSD_PATH

PIN = "246810"
ROLES = ("homeroom_teacher", "principal", "seal")


@pytest.fixture(scope="module")
def dev():
    return ca.dev_ca()


@pytest.fixture(scope="module")
def signers(dev):
    """The three signers' keys, each exported to PKCS#12 and loaded back as the portal would."""
    issued = {
        "homeroom_teacher": ca.issue_person(
            dev, common_name="Lê Thị Mỹ Duyên", title="Giáo viên chủ nhiệm", algorithm="rsa"
        ),
        "principal": ca.issue_person(dev, common_name="Bùi Văn Nam", title="Phó Hiệu trưởng"),
        "seal": ca.issue_organisation(dev, name="Trường Tiểu học Kim Đồng", province="Lào Cai"),
    }
    return {role: pkcs12_load(ca.pkcs12_export(i, PIN), PIN) for role, i in issued.items()}


@pytest.fixture(scope="module")
def crl(dev):
    return ca.issue_crl(dev, [1234567])


@pytest.fixture(scope="module")
def unsigned():
    return year_record_xml(primary_record())


def sign_all(xml: bytes, signers, roles=ROLES) -> bytes:
    for role in roles:
        k = signers[role]
        xml = sign_year_record(xml, key=k.key, cert=k.cert, chain=k.chain, role=role)
    return xml


@pytest.fixture(scope="module")
def signed(unsigned, signers):
    return sign_all(unsigned, signers)


def verify(xml, dev, crl, *, roots=None):
    return verify_year_record(xml, trust_roots=roots or dev.roots, crls=[crl])


# xmlsec1 ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pems(dev, tmp_path_factory):
    return write_pems(dev, tmp_path_factory.mktemp("pems"))


# The signed document ----------------------------------------------------------------------------


def test_three_signatures_verify(signed, dev, crl):
    reports = verify(signed, dev, crl)
    assert [r.problems for r in reports] == [(), (), ()]
    assert all_valid(reports)
    assert [r.role for r in reports] == list(ROLES)
    assert [(r.signer, r.title) for r in reports] == [
        ("Lê Thị Mỹ Duyên", "Giáo viên chủ nhiệm"),
        ("Bùi Văn Nam", "Phó Hiệu trưởng"),
        ("Trường Tiểu học Kim Đồng", ""),
    ]
    assert reports[2].organisation == "Trường Tiểu học Kim Đồng"
    assert [len(r.covers) for r in reports] == [0, 1, 2]
    assert reports[2].covers == (reports[0].signature_id, reports[1].signature_id)
    assert all(r.signing_time is not None for r in reports)


def test_xmlsec1_verifies_each_signature(signed, pems, tmp_path):
    assert xmlsec1_results(signed, pems, tmp_path) == [True, True, True]


def test_content_bytes_unchanged_and_schema_valid(signed, unsigned):
    assert content_bytes(signed) == content_bytes(unsigned)
    assert signed.startswith(unsigned[: unsigned.index(b"<chuky>")])
    year_record_load(signed)  # the XSD still accepts it


def test_xmllint_accepts_signed(signed, tmp_path):
    (tmp_path / "r.xml").write_bytes(signed)
    run = subprocess.run(
        [xmllint(), "--noout", "--schema", str(XSD_PATH), str(tmp_path / "r.xml")], capture_output=True
    )
    assert run.returncode == 0, run.stderr


def test_each_step_verifies_on_its_own(unsigned, signers, dev, crl):
    one = sign_all(unsigned, signers, ROLES[:1])
    two = sign_all(one, signers, ROLES[1:2])
    assert two.startswith(one[: one.index(b"</chuky>")])  # the first signature's bytes stay
    assert [r.ok for r in verify(two, dev, crl)] == [True, True]
    assert not all_valid(verify(two, dev, crl))  # but the record is not complete


def test_order_is_enforced_when_signing(unsigned, signers, signed):
    k = signers["principal"]
    with pytest.raises(SigningError) as error:
        sign_year_record(unsigned, key=k.key, cert=k.cert, chain=k.chain, role="principal")
    assert error.value.code == "wrong_order"
    with pytest.raises(SigningError) as error:
        sign_year_record(signed, key=k.key, cert=k.cert, chain=k.chain, role="seal")
    assert error.value.code == "complete"


# Tampering: both verifiers refuse ----------------------------------------------------------------


def tree(xml):
    return etree.fromstring(xml)


def c14n(root) -> bytes:
    return etree.tostring(root, method="c14n")


def signatures(root):
    return root.findall(f"{{{NAMESPACE}}}chuky/{{{DS}}}Signature")


def changed_byte(xml):
    assert xml.count(b"<diemktdk>9</diemktdk>") >= 1
    return xml.replace(b"<diemktdk>9</diemktdk>", b"<diemktdk>8</diemktdk>", 1)


def removed_first(xml):
    root = tree(xml)
    signatures(root)[0].getparent().remove(signatures(root)[0])
    return c14n(root)


def removed_middle(xml):
    root = tree(xml)
    signatures(root)[1].getparent().remove(signatures(root)[1])
    return c14n(root)


def reordered_renumbered(xml):
    """The teacher's and principal's signatures swapped, their Ids renumbered to fit."""
    text = xml.decode()
    text = text.replace("-sig-1-homeroom_teacher", "-sig-X").replace(
        "-sig-2-principal", "-sig-1-homeroom_teacher"
    )
    text = text.replace("-sig-X", "-sig-2-principal")
    root = tree(text.encode())
    first, second = signatures(root)[:2]
    first.addprevious(second)
    return c14n(root)


def wrapped_duplicate_id(xml):
    """A forged content with the same Id in front; the signed one hidden in the seal's ds:Object."""
    root = tree(xml)
    original = root.find(f"{{{NAMESPACE}}}thongtinhocba")
    forged = copy.deepcopy(original)
    forged.find(f".//{{{NAMESPACE}}}diemktdk").text = "10"
    signatures(root)[2].find(f"{{{DS}}}Object").append(copy.deepcopy(original))
    root.replace(original, forged)
    return c14n(root)


def wrapped_moved(xml):
    """The signed content moved into a ds:Object in <chuky>; a forged version 2 shown instead."""
    root = tree(xml)
    original = root.find(f"{{{NAMESPACE}}}thongtinhocba")
    holder = etree.SubElement(root.find(f"{{{NAMESPACE}}}chuky"), f"{{{DS}}}Object")
    holder.append(copy.deepcopy(original))
    forged = copy.deepcopy(original)
    forged.set("Id", original.get("Id").replace("-v1", "-v2"))
    forged.find(f"{{{NAMESPACE}}}phienban").text = "2"
    root.replace(original, forged)
    return c14n(root)


TAMPERING = {
    "changed content byte": (changed_byte, [False, False, False]),
    "first signature removed": (removed_first, [False, False, False]),
    "middle signature removed": (removed_middle, [True, False, False]),
    "reordered, Ids renumbered": (reordered_renumbered, [False, False, False]),
    "wrapping, duplicated Id": (wrapped_duplicate_id, [False, False, False]),
    "wrapping, content moved": (wrapped_moved, [False, False, False]),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_refused_by_our_verifier(case, signed, dev, crl):
    tampered = TAMPERING[case][0](signed)
    reports = verify(tampered, dev, crl)
    assert not all_valid(reports)
    assert any(r.problems for r in reports)
    assert all(p.code and p.detail for r in reports for p in r.problems)


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_refused_by_xmlsec1(case, signed, pems, tmp_path):
    tamper, expected = TAMPERING[case]
    verdicts = xmlsec1_results(tamper(signed), pems, tmp_path)
    assert verdicts == expected
    assert not all(verdicts)


def test_reordered_elements_refused(signed, dev, crl, pems, tmp_path):
    """Elements swapped, Ids kept. The signed order cannot be forged (signature 2 still covers
    signature 1, which xmlsec1 confirms); our verifier refuses the document as out of order."""
    root = tree(signed)
    first, second = signatures(root)[:2]
    first.addprevious(second)
    reports = verify(c14n(root), dev, crl)
    assert not all_valid(reports)
    assert ProblemCode.ORDER_CHANGED in reports[0].codes
    # xmlsec1 finds signatures by Id, not by place: each still holds.
    assert xmlsec1_results(c14n(root), pems, tmp_path) == [True, True, True]


def test_detached_signature_element_is_refused(signed, dev, crl):
    """A reference list that does not cover the earlier signature is outside the profile."""
    text = signed.replace(
        b'URI="#HB-08100501.0810050120190001.2024-2025-v1-sig-1-homeroom_teacher-value"', b'URI="#x"', 1
    )
    reports = verify(text, dev, crl)
    assert not all_valid(reports)


def test_not_xml_gives_reason(dev, crl):
    reports = verify(b"<nope", dev, crl)
    assert reports[0].position == 0 and reports[0].codes == (ProblemCode.NOT_A_YEAR_RECORD,)


# Refusals ---------------------------------------------------------------------------------------


def signed_by(unsigned, signers, dev, teacher) -> bytes:
    xml = sign_year_record(
        unsigned, key=teacher.key, cert=teacher.cert, chain=teacher.chain, role="homeroom_teacher"
    )
    return sign_all(xml, signers, ROLES[1:])


def test_expired_certificate_refused(unsigned, signers, dev, crl, pems, tmp_path):
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    old = ca.issue_person(
        dev,
        common_name="Giáo viên cũ",
        title="Giáo viên chủ nhiệm",
        not_before=start,
        not_after=start.replace(year=2021),
    )
    reports = verify(signed_by(unsigned, signers, dev, old), dev, crl)
    assert ProblemCode.EXPIRED in reports[0].codes
    assert xmlsec1_results(signed_by(unsigned, signers, dev, old), pems, tmp_path)[0] is False


def test_revoked_certificate_refused(unsigned, signers, dev):
    teacher = ca.issue_person(dev, common_name="Giáo viên", title="Giáo viên chủ nhiệm")
    revoking = ca.issue_crl(dev, [teacher.cert.serial_number])
    xml = signed_by(unsigned, signers, dev, teacher)
    reports = verify_year_record(xml, trust_roots=dev.roots, crls=[revoking])
    assert ProblemCode.REVOKED in reports[0].codes
    assert reports[1].ok and reports[2].ok
    # xmlsec1 1.2 has no option to load a CRL: revocation is our verifier's alone.


def test_missing_crl_refused(signed, dev):
    reports = verify_year_record(signed, trust_roots=dev.roots, crls=[])
    assert all(ProblemCode.REVOCATION_UNKNOWN in r.codes for r in reports)


def test_untrusted_root_refused(signed, crl, dev):
    other = ca.dev_ca("Một CA khác")
    reports = verify_year_record(signed, trust_roots=other.roots, crls=[crl])
    assert all(ProblemCode.UNTRUSTED_ISSUER in r.codes for r in reports)
    # and a look-alike: same names, other keys
    twin = ca.dev_ca()
    assert twin.root_cert.subject == dev.root_cert.subject
    reports = verify_year_record(signed, trust_roots=twin.roots, crls=[crl])
    assert not any(r.ok for r in reports)


def test_wrong_key_usage_refused(unsigned, signers, dev, crl):
    encipher_only = ca.issue_person(
        dev, common_name="Giáo viên", title="Giáo viên chủ nhiệm", key_usage=("key_encipherment",)
    )
    reports = verify(signed_by(unsigned, signers, dev, encipher_only), dev, crl)
    assert ProblemCode.KEY_USAGE in reports[0].codes


def test_wrong_pin_refused(dev):
    exported = ca.pkcs12_export(ca.issue_person(dev, common_name="A", title="B"), PIN)
    with pytest.raises(Pkcs12Error) as error:
        pkcs12_load(exported, "000000")
    assert error.value.code == "wrong_pin"
    with pytest.raises(Pkcs12Error) as error:
        pkcs12_load(b"not a key file", PIN)
    assert error.value.code == "not_pkcs12"


def test_pkcs12_sealed_at_rest(dev):
    issued = ca.issue_person(dev, common_name="Đặng Quốc Khánh", title="Hiệu trưởng")
    exported = ca.pkcs12_export(issued, PIN)
    deployment_key = new_deployment_key()
    sealed = pkcs12_seal(exported, deployment_key)
    assert exported not in sealed
    loaded = pkcs12_load_sealed(sealed, deployment_key, PIN)
    assert loaded.cert == issued.cert and loaded.chain == (dev.issuing_cert,)
    with pytest.raises(Pkcs12Error) as error:
        pkcs12_load_sealed(sealed, new_deployment_key(), PIN)
    assert error.value.code == "wrong_deployment_key"
