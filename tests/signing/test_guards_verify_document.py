# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Every refusal of the verifier, triggered by one change to a good document, with its code and words.

A check that is removed must be missed: each test asserts the problem that this check alone
reports, so the test fails when the check goes even if another check would still refuse the
document (issue 9, finding 14: the signature-method, transform and CA-as-signer checks could be
removed with the suite green). Pure: no database.

This module: the document as a whole, the profile of each signature, and what it carries.
"""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from signing import ca
from signing.choices import Problem
from signing.profile import DS, EXC_C14N, ROLES
from signing.verify import all_valid, verify_year_record
from tests.signing.test_profile import (  # noqa: F401
    c14n,
    crl,
    dev,
    sign_all,
    signatures,
    signed,
    signers,
    tree,
    unsigned,
    verify,
    wrapped_duplicate_id,
    wrapped_moved,
)
from tests.signing.verify_kit import NS, C, content_id, details_of, first, problems_of
from transcripts.schema import NAMESPACE


def test_a_good_document_has_no_problem_and_each_signature_covers_the_earlier_ones(signed, dev, crl):
    reports = verify(signed, dev, crl)
    assert [r.problems for r in reports] == [(), (), ()]
    assert [r.covers for r in reports] == [
        (),
        (reports[0].signature_id,),
        tuple(r.signature_id for r in reports[:2]),
    ]
    assert all_valid(reports) and not all_valid(reports, expected=2)


def test_an_unsigned_record_has_no_report_and_is_not_valid(unsigned, dev, crl):
    assert verify(unsigned, dev, crl) == []
    assert not all_valid([])


def test_a_second_content_element_is_named_as_such(signed, dev, crl):
    reports = verify(wrapped_moved(signed), dev, crl)
    assert reports[0].position == 0
    assert reports[0].problems == (
        Problem(C.CONTENT_COUNT, "2 content elements <thongtinhocba> in the document, not one"),
    )


def test_an_id_used_twice_is_named_as_a_wrapping_attack(signed, dev, crl):
    reports = verify(wrapped_duplicate_id(signed), dev, crl)
    assert reports[0].position == 0
    assert reports[0].problems == (
        Problem(C.DUPLICATE_ID, f"Id used more than once (a wrapping attack?): {content_id(signed)}"),
        Problem(C.CONTENT_COUNT, "2 content elements <thongtinhocba> in the document, not one"),
    )


def test_a_fourth_signature_is_outside_the_profile(signed, dev, crl):
    root = tree(signed)
    import copy

    root.find(f"{{{NAMESPACE}}}chuky").append(copy.deepcopy(signatures(root)[2]))
    reports = verify(c14n(root), dev, crl)
    assert Problem(C.TOO_MANY_SIGNATURES, "Signature 4: the profile has only 3 signatures") in problems_of(
        reports, 4
    )


def test_a_signature_id_outside_the_profile_is_refused(signed, dev, crl):
    xml = first(signed, lambda s: s.set("Id", "sig-anything"))
    assert Problem(
        C.ID_OUTSIDE_PROFILE, "Signature 1 has an Id outside the profile: 'sig-anything'"
    ) in problems_of(verify(xml, dev, crl), 1)


def test_a_signature_numbered_for_another_place_is_called_reordered(signed, dev, crl):
    xml = first(signed, lambda s: s.set("Id", f"{content_id(signed)}-sig-2-homeroom_teacher"))
    assert Problem(
        C.ORDER_CHANGED, "Signature 2 stands at position 1: the signatures were reordered"
    ) in problems_of(verify(xml, dev, crl), 1)


def test_a_signature_id_naming_another_role_is_refused(signed, dev, crl):
    xml = first(signed, lambda s: s.set("Id", f"{content_id(signed)}-sig-1-principal"))
    assert Problem(
        C.WRONG_ROLE, "Signature 1 is the principal's; the homeroom_teacher's is expected there"
    ) in problems_of(verify(xml, dev, crl), 1)


def test_a_signature_without_signed_info_is_refused(signed, dev, crl):
    def drop(signature):
        signature.remove(signature.find("ds:SignedInfo", NS))

    assert Problem(C.NO_SIGNED_INFO, "Signature 1 has no SignedInfo") in problems_of(
        verify(first(signed, drop), dev, crl), 1
    )


def test_inclusive_canonicalisation_is_refused(signed, dev, crl):
    def inclusive(signature):
        signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).set(
            "Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
        )

    assert Problem(
        C.WRONG_CANONICALIZATION, "Signature 1: SignedInfo must use exclusive C14N"
    ) in problems_of(verify(first(signed, inclusive), dev, crl), 1)


def test_a_canonicalisation_element_with_children_is_refused(signed, dev, crl):
    def with_child(signature):
        etree.SubElement(signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS), f"{{{DS}}}X")

    assert Problem(
        C.WRONG_CANONICALIZATION, "Signature 1: SignedInfo must use exclusive C14N"
    ) in problems_of(verify(first(signed, with_child), dev, crl), 1)


@pytest.mark.parametrize(
    "method",
    ["http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#hmac-sha1", None],
)
def test_a_signature_method_other_than_rsa_or_ecdsa_with_sha256_is_refused(method, signed, dev, crl):
    def change(signature):
        element = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
        if method is None:
            element.getparent().remove(element)
        else:
            element.set("Algorithm", method)

    assert Problem(
        C.WRONG_SIGNATURE_METHOD, "Signature 1: signature method must be RSA or ECDSA with SHA-256"
    ) in problems_of(verify(first(signed, change), dev, crl), 1)


def test_both_accepted_signature_methods_pass_the_profile(signed, dev, crl):
    methods = {
        s.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") for s in signatures(tree(signed))
    }
    assert methods == {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    }
    assert all(r.ok for r in verify(signed, dev, crl))


def test_a_signature_that_does_not_cover_the_earlier_one_is_refused(signed, dev, crl):
    root = tree(signed)
    second = signatures(root)[1]
    references = second.findall("ds:SignedInfo/ds:Reference", NS)
    references[1].set("URI", "#x")
    reports = verify(c14n(root), dev, crl)
    uris = [r.get("URI") for r in references]
    assert Problem(
        C.WRONG_REFERENCES,
        "Signature 2 must cover the content and the 1 earlier signature(s) in order, "
        f"then its own properties; it covers {uris}",
    ) in problems_of(reports, 2)


def test_a_signature_with_an_extra_reference_is_refused(signed, dev, crl):
    import copy

    def extra(signature):
        info = signature.find("ds:SignedInfo", NS)
        info.append(copy.deepcopy(info.findall("ds:Reference", NS)[0]))

    details = details_of(verify(first(signed, extra), dev, crl), 1, C.WRONG_REFERENCES)
    assert len(details) == 1
    assert details[0].startswith("Signature 1 must cover the content and the 0 earlier signature(s)")


def test_signed_properties_that_are_not_its_own_are_refused(signed, dev, crl):
    def retype(signature):
        signature.findall("ds:SignedInfo/ds:Reference", NS)[-2].set("Type", "http://example.org/other")

    assert Problem(
        C.FOREIGN_SIGNED_PROPERTIES, "Signature 1: its XAdES SignedProperties are not its own"
    ) in problems_of(verify(first(signed, retype), dev, crl), 1)


def test_signed_properties_of_another_signature_are_refused(signed, dev, crl):
    root = tree(signed)
    theirs = signatures(root)[1].find(".//xades:SignedProperties", NS).get("Id")
    signatures(root)[0].findall("ds:SignedInfo/ds:Reference", NS)[-2].set("URI", f"#{theirs}")
    assert Problem(
        C.FOREIGN_SIGNED_PROPERTIES, "Signature 1: its XAdES SignedProperties are not its own"
    ) in problems_of(verify(c14n(root), dev, crl), 1)


def test_a_certificate_reference_to_another_key_info_is_refused(signed, dev, crl):
    root = tree(signed)
    theirs = signatures(root)[1].find("ds:KeyInfo", NS).get("Id")
    signatures(root)[0].findall("ds:SignedInfo/ds:Reference", NS)[-1].set("URI", f"#{theirs}")
    assert Problem(
        C.FOREIGN_KEY_INFO, "Signature 1: its certificate reference is not to its own KeyInfo"
    ) in problems_of(verify(c14n(root), dev, crl), 1)


def test_a_signature_without_key_info_is_refused(signed, dev, crl):
    def drop(signature):
        signature.remove(signature.find("ds:KeyInfo", NS))

    problems = problems_of(verify(first(signed, drop), dev, crl), 1)
    assert (
        Problem(C.FOREIGN_KEY_INFO, "Signature 1: its certificate reference is not to its own KeyInfo")
        in problems
    )
    assert Problem(C.MISSING_CERTIFICATE, "Signature 1 carries no signer certificate") in problems


@pytest.mark.parametrize(
    "transforms",
    [
        ["http://www.w3.org/TR/1999/REC-xpath-19991116"],
        [EXC_C14N, "http://www.w3.org/TR/1999/REC-xslt-19991116"],
        [],
    ],
)
def test_a_reference_with_transforms_outside_the_profile_is_refused(transforms, signed, dev, crl):
    def change(signature):
        reference = signature.find("ds:SignedInfo/ds:Reference", NS)
        holder = reference.find("ds:Transforms", NS)
        for transform in list(holder):
            holder.remove(transform)
        for algorithm in transforms:
            etree.SubElement(holder, f"{{{DS}}}Transform", Algorithm=algorithm)

    uri = f"#{content_id(signed)}"
    assert Problem(
        C.WRONG_TRANSFORM, f"Signature 1: reference {uri} has transforms outside the profile"
    ) in problems_of(verify(first(signed, change), dev, crl), 1)


def test_a_transform_with_parameters_is_refused(signed, dev, crl):
    def change(signature):
        transform = signature.find("ds:SignedInfo/ds:Reference/ds:Transforms/ds:Transform", NS)
        etree.SubElement(transform, f"{{{DS}}}XPath").text = "self::node()"

    uri = f"#{content_id(signed)}"
    assert Problem(
        C.WRONG_TRANSFORM, f"Signature 1: reference {uri} has transforms outside the profile"
    ) in problems_of(verify(first(signed, change), dev, crl), 1)


@pytest.mark.parametrize("digest", ["http://www.w3.org/2000/09/xmldsig#sha1", None])
def test_a_reference_not_digested_with_sha256_is_refused(digest, signed, dev, crl):
    def change(signature):
        element = signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS)
        if digest is None:
            element.getparent().remove(element)
        else:
            element.set("Algorithm", digest)

    uri = f"#{content_id(signed)}"
    assert Problem(
        C.WRONG_DIGEST_METHOD, f"Signature 1: reference {uri} is not digested with SHA-256"
    ) in problems_of(verify(first(signed, change), dev, crl), 1)


@pytest.mark.parametrize("when", [None, "", "yesterday", "2026-01-01T08:00:00"])
def test_a_missing_unreadable_or_naive_signing_time_is_refused(when, signed, dev, crl):
    def change(signature):
        element = signature.find(".//xades:SigningTime", NS)
        if when is None:
            element.getparent().remove(element)
        else:
            element.text = when

    reports = verify(first(signed, change), dev, crl)
    assert Problem(C.NO_SIGNING_TIME, "Signature 1 has no valid xades:SigningTime") in problems_of(reports, 1)
    assert reports[0].signing_time is None


def test_an_unreadable_certificate_is_said(signed, dev, crl):
    def change(signature):
        signature.find("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS).text = "bm90IGEgY2VydGlmaWNhdGU="

    reports = verify(first(signed, change), dev, crl)
    [detail] = details_of(reports, 1, C.UNREADABLE_CERTIFICATE)
    assert detail.startswith("Signature 1: unreadable certificate (")
    assert Problem(C.MISSING_CERTIFICATE, "Signature 1 carries no signer certificate") in problems_of(
        reports, 1
    )


def test_a_signature_without_a_certificate_is_refused(signed, dev, crl):
    def change(signature):
        data = signature.find("ds:KeyInfo/ds:X509Data", NS)
        for element in data.findall("ds:X509Certificate", NS):
            data.remove(element)

    reports = verify(first(signed, change), dev, crl)
    assert Problem(C.MISSING_CERTIFICATE, "Signature 1 carries no signer certificate") in problems_of(
        reports, 1
    )
    assert reports[0].signer == ""


def test_a_changed_value_breaks_every_signature_cryptographically(signed, dev, crl):
    xml = signed.replace(b"<diemktdk>9</diemktdk>", b"<diemktdk>8</diemktdk>", 1)
    reports = verify(xml, dev, crl)
    for k in (1, 2, 3):
        [detail] = details_of(reports, k, C.ALTERED)
        assert detail.startswith(f"Signature {k} is not valid: ")
    assert all(r.covers == () for r in reports)


def test_a_claimed_role_other_than_the_profiles_is_refused(signed, dev, crl):
    def change(signature):
        signature.find(".//xades:SignerRole/xades:ClaimedRoles/xades:ClaimedRole", NS).text = "principal"

    assert Problem(
        C.WRONG_CLAIMED_ROLE, "Signature 1 claims the role 'principal'; 'homeroom_teacher' is expected"
    ) in problems_of(verify(first(signed, change), dev, crl), 1)


def test_a_report_names_the_signer_and_the_role(signed, dev, crl, signers):
    report = verify(signed, dev, crl)[0]
    assert (report.role, report.signer, report.title) == (ROLES[0], "Lê Thị Mỹ Duyên", "Giáo viên chủ nhiệm")
    assert report.certificate_serial == signers["homeroom_teacher"].cert.serial_number


def test_the_signing_times_problem_is_reported_with_the_chain_problems(signed, dev, crl, unsigned, signers):
    """A signature made after its certificate expired is refused, even if its bytes hold."""
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    old = ca.issue_person(
        dev,
        common_name="Giáo viên cũ",
        title="Giáo viên chủ nhiệm",
        not_before=start,
        not_after=start.replace(year=2021),
    )
    from signing.profile import sign_year_record

    xml = sign_year_record(unsigned, key=old.key, cert=old.cert, chain=old.chain, role="homeroom_teacher")
    xml = sign_all(xml, signers, ROLES[1:])
    reports = verify(xml, dev, crl)
    [detail] = details_of(reports, 1, C.EXPIRED)
    assert detail.startswith(f"Giáo viên cũ (serial {old.cert.serial_number:x}) had expired at ")
    assert C.ALTERED not in reports[0].codes


def test_a_hostile_document_gives_a_reason_not_an_exception(dev, crl):
    reports = verify_year_record(b"<not-a-record/>", trust_roots=dev.roots, crls=[crl])
    assert len(reports) == 1 and reports[0].position == 0
    assert reports[0].codes == (C.NOT_A_YEAR_RECORD,)
    assert reports[0].problems[0].detail.startswith("Not a year record: ")
    [none] = verify_year_record(None, trust_roots=dev.roots, crls=[crl])  # type: ignore[arg-type]
    assert none.codes == (C.NOT_A_YEAR_RECORD,) and none.problems[0].detail.startswith("Not a year record: ")


def test_a_signature_that_cannot_be_checked_keeps_its_id_in_the_report(signed, dev, crl):
    """A properties reference without a URI makes the profile check itself fail: the report still
    names the signature and says why, instead of raising."""
    root = tree(signed)
    sig_id = signatures(root)[0].get("Id")
    del signatures(root)[0].findall("ds:SignedInfo/ds:Reference", NS)[-2].attrib["URI"]
    report = verify(c14n(root), dev, crl)[0]
    assert report.signature_id == sig_id
    assert report.codes == (C.UNCHECKABLE,) and len(report.problems) == 1
    assert report.problems[0].detail.startswith("Cannot be checked: ")


def test_a_signature_value_that_is_not_base64_is_called_malformed(signed, dev, crl):
    """signxml validates the signature against its schema first: an impossible value is damage,
    not a changed document."""

    def change(signature):
        signature.find("ds:SignatureValue", NS).text = "A"

    reports = verify(first(signed, change), dev, crl)
    [detail] = details_of(reports, 1, C.MALFORMED)
    assert detail.startswith(
        "Signature 1 cannot be checked: Element '{http://www.w3.org/2000/09/xmldsig#}SignatureValue'"
    )
    assert reports[0].codes == (C.MALFORMED,)


def test_a_signature_with_a_profile_problem_is_not_checked_cryptographically(signed, dev, crl):
    root = tree(signed)
    signatures(root)[1].set("Id", "x")
    report = verify(c14n(root), dev, crl)[1]
    assert report.problems == (
        Problem(C.ID_OUTSIDE_PROFILE, "Signature 2 has an Id outside the profile: 'x'"),
    )
    assert report.covers == ()  # nothing is vouched for by a signature outside the profile


def test_the_seals_claimed_role_is_checked_too(signed, dev, crl):
    root = tree(signed)
    signatures(root)[2].find(
        ".//xades:SignerRole/xades:ClaimedRoles/xades:ClaimedRole", NS
    ).text = "principal"
    assert C.WRONG_CLAIMED_ROLE in verify(c14n(root), dev, crl)[2].codes
