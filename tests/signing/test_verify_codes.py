# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Every verification problem code, made for real and shown on the public page with its own message.

For each code, an issued record's document is changed (or the portal's trust is) so that the
verifier (signing.verify) refuses it for that reason; the changed document is put where the issued
one is kept, as someone with access to the school's database would, and the public page of the
record (/tra-cuu/..., with its verification code) is opened. The page must show that code's own
Vietnamese message (ProblemCode's label, the one mapping) and name the code. A code added to
ProblemCode without a way to make it here fails `test_every_code_is_made_here`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection
from django.utils.html import escape
from django.utils.translation import gettext, override
from lxml import etree

from portal.models import IssuedRecord
from signing import ca, trust
from signing.choices import ProblemCode
from signing.profile import DS, XADES
from tests.portal.test_verification import code_url, issued  # noqa: F401
from tests.signing.test_profile import c14n, signatures, tree
from tests.signing.verify_kit import SIGNER_USAGE, _cert
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecordSignature
from transcripts.schema import NAMESPACE

C = ProblemCode
NS = {"ds": DS, "xades": XADES}


# --- Changes to the issued document, each making one refusal ----------------------------------------


def _first(change: Callable[[etree._Element], None]) -> Callable[[bytes, object], bytes]:
    """The document with `change(signature 1)` applied."""

    def changed(xml: bytes, _kit) -> bytes:
        root = tree(xml)
        change(signatures(root)[0])
        return c14n(root)

    return changed


def _content_id(signature: etree._Element) -> str:
    return signature.getroottree().getroot().find(f"{{{NAMESPACE}}}thongtinhocba").get("Id")


def _set_id(suffix: str):
    return _first(lambda s: s.set("Id", f"{_content_id(s)}-{suffix}"))


def _remove(path: str):
    def change(signature):
        element = signature.find(path, NS)
        element.getparent().remove(element)

    return _first(change)


def _set(path: str, attribute: str | None, value: str):
    def change(signature):
        element = signature.find(path, NS)
        if attribute is None:
            element.text = value
        else:
            element.set(attribute, value)

    return _first(change)


def _fourth_signature(xml: bytes, _kit) -> bytes:
    root = tree(xml)
    root.find(f"{{{NAMESPACE}}}chuky").append(copy.deepcopy(signatures(root)[2]))
    return c14n(root)


def _second_not_covering_the_first(xml: bytes, _kit) -> bytes:
    root = tree(xml)
    signatures(root)[1].findall("ds:SignedInfo/ds:Reference", NS)[1].set("URI", "#x")
    return c14n(root)


def _key_info_of_the_second(xml: bytes, _kit) -> bytes:
    root = tree(xml)
    theirs = signatures(root)[1].find("ds:KeyInfo", NS).get("Id")
    signatures(root)[0].findall("ds:SignedInfo/ds:Reference", NS)[-1].set("URI", f"#{theirs}")
    return c14n(root)


def _xpath_transform(signature):
    holder = signature.find("ds:SignedInfo/ds:Reference/ds:Transforms", NS)
    for transform in list(holder):
        holder.remove(transform)
    etree.SubElement(holder, f"{{{DS}}}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")


def _changed_value(xml: bytes, _kit) -> bytes:
    assert b"<tenlop>8A</tenlop>" in xml
    return xml.replace(b"<tenlop>8A</tenlop>", b"<tenlop>8B</tenlop>", 1)


def _key_info_id_twice(xml: bytes, _kit) -> bytes:
    root = tree(xml)
    theirs = signatures(root)[1].find("ds:KeyInfo", NS).get("Id")
    signatures(root)[0].find("ds:KeyInfo", NS).set("Id", theirs)
    return c14n(root)


def _content_copied_into_the_seal(xml: bytes, _kit) -> bytes:
    root = tree(xml)
    duplicate = copy.deepcopy(root.find(f"{{{NAMESPACE}}}thongtinhocba"))
    del duplicate.attrib["Id"]
    signatures(root)[2].find("ds:Object", NS).append(duplicate)
    return c14n(root)


def _properties_without_uri(signature):
    del signature.findall("ds:SignedInfo/ds:Reference", NS)[-2].attrib["URI"]


def _carrying(certificates: Callable[[object], list[x509.Certificate]]):
    """Signature 1 carrying these certificates (signer first) instead of its own."""

    def changed(xml: bytes, kit) -> bytes:
        root = tree(xml)
        data = signatures(root)[0].find("ds:KeyInfo/ds:X509Data", NS)
        for element in data.findall("ds:X509Certificate", NS):
            data.remove(element)
        for cert in certificates(kit.ca):
            pem = cert.public_bytes(Encoding.PEM).decode()
            body = "".join(line for line in pem.splitlines() if "-----" not in line)
            etree.SubElement(data, f"{{{DS}}}X509Certificate").text = body
        return c14n(root)

    return changed


def _signer(dev, **kwargs) -> list[x509.Certificate]:
    options = {"is_ca": False, "usage": SIGNER_USAGE, **kwargs}
    cert, _key = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký Thử", **options)
    return [cert, *dev.chain]


def _under_a_false_ca(dev) -> list[x509.Certificate]:
    middle, middle_key = _cert(
        dev.issuing_cert, dev.issuing_key, name="Giả CA", is_ca=False, usage=SIGNER_USAGE
    )
    cert, _key = _cert(middle, middle_key, name="Người Ký Thử", is_ca=False, usage=SIGNER_USAGE)
    return [cert, middle, *dev.chain]


def _six_links_down(dev) -> list[x509.Certificate]:
    issuer, issuer_key = dev.issuing_cert, dev.issuing_key
    chain: list[x509.Certificate] = []
    for n in range(6):
        usage = {"key_cert_sign": True, "crl_sign": True}
        issuer, issuer_key = _cert(issuer, issuer_key, name=f"CA {n}", is_ca=True, usage=usage)
        chain.insert(0, issuer)
    cert, _key = _cert(issuer, issuer_key, name="Người Ký Thử", is_ca=False, usage=SIGNER_USAGE)
    return [cert, *chain, *dev.chain]


def _from_another_ca(_dev) -> list[x509.Certificate]:
    other = ca.dev_ca("CA Lạ")
    cert, _key = _cert(
        other.issuing_cert, other.issuing_key, name="Người Lạ", is_ca=False, usage=SIGNER_USAGE
    )
    return [cert, *other.chain]


def _signed_at(when: str):
    return _set(".//xades:SigningTime", None, when)


def _unchanged(xml: bytes, _kit) -> bytes:
    return xml


# Each code: how the document changes, and how the portal's trust changes ("" for not at all).
CHANGES: dict[ProblemCode, tuple[Callable[[bytes, object], bytes], str]] = {
    C.DUPLICATE_ID: (_key_info_id_twice, ""),
    C.CONTENT_COUNT: (_content_copied_into_the_seal, ""),
    C.TOO_MANY_SIGNATURES: (_fourth_signature, ""),
    C.ID_OUTSIDE_PROFILE: (_first(lambda s: s.set("Id", "sig-anything")), ""),
    C.ORDER_CHANGED: (_set_id("sig-2-homeroom_teacher"), ""),
    C.WRONG_ROLE: (_set_id("sig-1-principal"), ""),
    C.NO_SIGNED_INFO: (_remove("ds:SignedInfo"), ""),
    C.WRONG_CANONICALIZATION: (
        _set(
            "ds:SignedInfo/ds:CanonicalizationMethod",
            "Algorithm",
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        ),
        "",
    ),
    C.WRONG_SIGNATURE_METHOD: (
        _set("ds:SignedInfo/ds:SignatureMethod", "Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
        "",
    ),
    C.WRONG_REFERENCES: (_second_not_covering_the_first, ""),
    C.FOREIGN_SIGNED_PROPERTIES: (
        _first(
            lambda s: s.findall("ds:SignedInfo/ds:Reference", NS)[-2].set("Type", "http://example.org/other")
        ),
        "",
    ),
    C.FOREIGN_KEY_INFO: (_key_info_of_the_second, ""),
    C.WRONG_TRANSFORM: (_first(_xpath_transform), ""),
    C.WRONG_DIGEST_METHOD: (
        _set(
            "ds:SignedInfo/ds:Reference/ds:DigestMethod",
            "Algorithm",
            "http://www.w3.org/2000/09/xmldsig#sha1",
        ),
        "",
    ),
    C.NO_SIGNING_TIME: (_remove(".//xades:SigningTime"), ""),
    C.UNREADABLE_CERTIFICATE: (
        _set("ds:KeyInfo/ds:X509Data/ds:X509Certificate", None, "bm90IGEgY2VydGlmaWNhdGU="),
        "",
    ),
    C.MISSING_CERTIFICATE: (_carrying(lambda dev: []), ""),
    C.ALTERED: (_changed_value, ""),
    C.MALFORMED: (_set("ds:SignatureValue", None, "A"), ""),  # not base64: signxml's schema refuses it
    C.UNCHECKABLE: (_first(_properties_without_uri), ""),
    C.WRONG_CLAIMED_ROLE: (
        _set(".//xades:SignerRole/xades:ClaimedRoles/xades:ClaimedRole", None, "principal"),
        "",
    ),
    C.NO_TRUST_ROOTS: (_unchanged, "no_roots"),
    C.CA_AS_SIGNER: (_carrying(lambda dev: [dev.issuing_cert, dev.root_cert]), ""),
    C.KEY_USAGE: (_carrying(lambda dev: _signer(dev, usage={"key_encipherment": True})), ""),
    C.NO_KEY_USAGE: (_carrying(lambda dev: _signer(dev, usage=None)), ""),
    C.ISSUER_NOT_CA: (_carrying(_under_a_false_ca), ""),
    C.UNTRUSTED_ISSUER: (_carrying(_from_another_ca), ""),
    C.CHAIN_TOO_LONG: (_carrying(_six_links_down), ""),
    C.NOT_YET_VALID: (_signed_at("2001-01-01T08:00:00+07:00"), ""),
    C.EXPIRED: (_signed_at("2099-01-01T08:00:00+07:00"), ""),
    C.REVOCATION_UNKNOWN: (_unchanged, "no_crls"),
    C.REVOKED: (_unchanged, "revoke_the_homeroom_teacher"),
}
# Never on the page: the school's copy of an issued record is a year record (it is parsed to be
# shown). The refusal is made for real in test_guards_verify_document (a hostile document gives a reason).
NOT_ON_THE_PAGE = {C.NOT_A_YEAR_RECORD}


# --- The timestamps' codes: a record issued with the reference TSA (XAdES-T and LT) --------------

TSA_NS = {**NS, "v141": "http://uri.etsi.org/01903/v1.4.1#"}


def _swap_timestamps(xml: bytes, _kit) -> bytes:
    """The first two signatures' tokens swapped: each genuine, over the other's SignatureValue."""
    root = tree(xml)
    first, second = signatures(root)[:2]
    a, b = (s.find(".//xades:EncapsulatedTimeStamp", NS) for s in (first, second))
    a.text, b.text = b.text, a.text
    return c14n(root)


def _bad_archive_timestamp(xml: bytes, _kit) -> bytes:
    """An ArchiveTimeStamp whose token is the signature's own SignatureTimeStamp (over other data)."""
    root = tree(xml)
    first = signatures(root)[0]
    token = first.find(".//xades:SignatureTimeStamp/xades:EncapsulatedTimeStamp", NS).text
    properties = first.find(".//xades:UnsignedSignatureProperties", NS)
    stamp = etree.SubElement(properties, f"{{{TSA_NS['v141']}}}ArchiveTimeStamp")
    etree.SubElement(
        stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"
    )
    etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = token
    return c14n(root)


# Each code: the change, the portal's trust change, and the verification's moment in days from now
# (the page verifies at the clock: the tests move the clock of signing.verify with `now`).
TIMESTAMP_CHANGES: dict[ProblemCode, tuple[Callable[[bytes, object], bytes], str, int]] = {
    C.TIMESTAMP_INVALID: (_swap_timestamps, "", 0),
    C.TIMESTAMP_UNTRUSTED: (_unchanged, "no_tsa_roots", 0),
    C.TIMESTAMP_EXPIRED: (_unchanged, "", 6 * 365),
    C.ARCHIVE_TIMESTAMP_INVALID: (_bad_archive_timestamp, "", 0),
    C.EXPIRED_SINCE: (_unchanged, "", 2 * 365),
    C.REVOKED_SINCE: (_unchanged, "revoke_the_homeroom_teacher_later", 0),
}
NOTES = {C.EXPIRED_SINCE, C.REVOKED_SINCE}


def test_every_code_is_made_here():
    assert set(CHANGES) | set(TIMESTAMP_CHANGES) | NOT_ON_THE_PAGE == set(ProblemCode)


@pytest.mark.parametrize("code", list(ProblemCode), ids=str)
def test_every_code_has_its_own_vietnamese_message(code):
    with override("en"):
        english = {other: str(other.label) for other in ProblemCode}
    with override("vi"):
        vietnamese = {other: str(other.label) for other in ProblemCode}
    assert vietnamese[code] != english[code]  # translated
    assert list(vietnamese.values()).count(vietnamese[code]) == 1  # its own, no other code's


def _keep_as_issued(record, xml: bytes) -> None:
    """Put `xml` where the school keeps the issued document, and in the public index's hash.

    The signatures table is append-only (a trigger): its guard is lifted for this one statement
    of the test's transaction, as an attacker with the database's owner role would.
    """
    import hashlib

    from transcripts.records.services import year_record_document

    school = IssuedRecord.objects.get(record_id=record.record_id, version=record.version).school
    digest = hashlib.sha256(xml).hexdigest()
    with school, connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # user triggers off
        YearRecordSignature.objects.filter(record=record, position=3).update(signed_xml=xml, sha256=digest)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        assert year_record_document(record) == xml
    connection.set_schema_to_public()
    IssuedRecord.objects.filter(record_id=record.record_id, version=record.version).update(sha256=digest)


def _change_trust(how: str, settings, signing_trust, homeroom_teacher) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    from tests.signing_kit import PIN, TITLES

    if how == "no_roots":
        settings.HOCBA_TRUST_ROOTS = []
    elif how == "no_crls":
        settings.HOCBA_TRUST_CRLS = []
    elif how == "no_tsa_roots":
        settings.HOCBA_TSA_TRUST_ROOTS = []
    elif how.startswith("revoke_the_homeroom_teacher"):
        import datetime as dt

        p12 = signing_trust.person(homeroom_teacher.full_name, TITLES["homeroom_teacher"])
        _key, cert, _chain = pkcs12.load_key_and_certificates(p12, PIN.encode())
        # "later": dated an hour from now, after the timestamp (a CRL's own time is whole seconds).
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1) if how.endswith("_later") else None
        signing_trust.revoke(cert, later)
    trust.trust_reset()


@pytest.mark.parametrize("code", list(CHANGES), ids=str)
def test_the_page_shows_each_problem_with_its_own_message(
    code, issued, client, settings, signing_trust, homeroom_teacher
):
    change, trust_change = CHANGES[code]
    xml = change(issued.issued_xml, signing_trust)
    if xml != issued.issued_xml:
        _keep_as_issued(issued, xml)
    try:
        _change_trust(trust_change, settings, signing_trust, homeroom_teacher)
        response = client.get(code_url(issued))
    finally:
        signing_trust.unrevoke_all()
        trust.trust_reset()
    assert response.status_code == 200
    page = response.content.decode()
    with override("vi"):
        message = escape(str(code.label))
    assert f'<li data-problem="{code.value}">{message}</li>' in page
    # Once as its message, at least once more as the verifier's words under "Technical detail".
    assert page.count(f'<li data-problem="{code.value}">') >= 2


def test_a_school_copy_that_is_no_year_record_answers_not_found_instead_of_a_500(issued, client, caplog):
    """The one code not on the page: the copy is parsed to be shown, so a copy that is no year
    record (with a matching hash: someone changed both) is said as for an unknown record, and
    logged loudly for the operator."""
    _keep_as_issued(issued, b'<hocba xmlns="urn:hocbaso:year-record:1.0"/>')
    response = client.get(code_url(issued))
    assert response.status_code == 404
    with override("vi"):
        assert escape(gettext("No issued year record has this id, version and verification code.")) in (
            response.content.decode()
        )
    assert f"Issued record {issued.record_id} v1: the school's copy is not a year record" in caplog.text


@pytest.fixture
def issued_timestamped(timestamping, homeroom_teacher, principal, school, records):
    """An issued record whose three signatures carry timestamps and, from the seal, LT data."""
    from tests.signing_kit import issue
    from transcripts.records.services import year_record_document

    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    record.issued_xml = year_record_document(record)
    connection.set_schema_to_public()
    return record


@pytest.mark.parametrize("code", list(TIMESTAMP_CHANGES), ids=str)
def test_the_page_shows_each_timestamp_problem_and_note(
    code, issued_timestamped, client, settings, signing_trust, homeroom_teacher, monkeypatch
):
    import datetime as dt

    from signing import verify

    change, trust_change, days = TIMESTAMP_CHANGES[code]
    issued = issued_timestamped
    assert b"EncapsulatedTimeStamp" in issued.issued_xml and b"CertificateValues" in issued.issued_xml
    xml = change(issued.issued_xml, signing_trust)
    if xml != issued.issued_xml:
        _keep_as_issued(issued, xml)
    if days:  # the page verifies with the clock moved on (the verifier's `now`)
        moved = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        real = verify.verify_year_record
        monkeypatch.setattr(
            "signing.selectors.verify_year_record", lambda *a, **k: real(*a, **{**k, "now": moved})
        )
    try:
        _change_trust(trust_change, settings, signing_trust, homeroom_teacher)
        response = client.get(code_url(issued))
    finally:
        signing_trust.unrevoke_all()
        trust.trust_reset()
    assert response.status_code == 200
    page = response.content.decode()
    with override("vi"):
        message = escape(str(code.label))
    kind = "note" if code in NOTES else "problem"
    assert f'<li data-{kind}="{code.value}">{message}</li>' in page
    assert page.count(f'<li data-{kind}="{code.value}">') >= 2
    if code in NOTES:  # a note leaves the signature valid, and its level is shown
        assert 'data-level="LT"' in page and "data-problem=" not in page
