# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Every refusal of the verifier, triggered by one change to a good document, with its code and words.

A check that is removed must be missed: each test asserts the problem that this check alone
reports, so the test fails when the check goes even if another check would still refuse the
document (issue 9, finding 14: the signature-method, transform and CA-as-signer checks could be
removed with the suite green). Pure: no database.

This module: the signer's certificate (its path, usage, validity and revocation).
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing import ca
from signing.choices import Problem
from signing.verify import certificate_problems
from tests.signing.test_profile import (  # noqa: F401
    dev,
)
from tests.signing.verify_kit import NOW, SIGNER_USAGE, C, _cert, check


def test_a_good_signers_certificate_has_no_problem(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert) == []


def test_non_repudiation_alone_is_a_signing_usage(dev):
    cert, _ = _cert(
        dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage={"content_commitment": True}
    )
    assert check(dev, cert) == []


def test_no_trust_roots_means_no_certificate_can_sign(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert certificate_problems(cert, dev.chain, trust_roots=[], crls=[], at=NOW) == [
        Problem(C.NO_TRUST_ROOTS, "No trust roots configured")
    ]


def test_a_ca_certificate_cannot_be_a_signer_even_with_a_signing_usage(dev):
    cert, _ = _cert(
        dev.issuing_cert,
        dev.issuing_key,
        name="CA Ký Thay",
        is_ca=True,
        usage={"digital_signature": True, "key_cert_sign": True},
    )
    assert check(dev, cert) == [
        Problem(
            C.CA_AS_SIGNER, f"CA Ký Thay (serial {cert.serial_number:x}) is a CA certificate, not a signer's"
        )
    ]


def test_a_certificate_without_basic_constraints_may_sign(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=None, usage=SIGNER_USAGE)
    assert check(dev, cert) == []


def test_a_certificate_not_for_signing_is_refused(dev):
    cert, _ = _cert(
        dev.issuing_cert, dev.issuing_key, name="Mã Hoá", is_ca=False, usage={"key_encipherment": True}
    )
    assert check(dev, cert) == [
        Problem(
            C.KEY_USAGE,
            f"Mã Hoá (serial {cert.serial_number:x}) is not for signing "
            "(key usage lacks digitalSignature/nonRepudiation)",
        )
    ]


def test_a_certificate_without_key_usage_is_refused(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Không Rõ", is_ca=False, usage=None)
    assert check(dev, cert) == [
        Problem(
            C.NO_KEY_USAGE,
            f"Không Rõ (serial {cert.serial_number:x}) has no key usage: not a signing certificate",
        )
    ]


def test_an_intermediate_that_is_not_a_ca_breaks_the_chain(dev):
    middle, middle_key = _cert(
        dev.issuing_cert, dev.issuing_key, name="Giả CA", is_ca=False, usage=SIGNER_USAGE
    )
    cert, _ = _cert(middle, middle_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, [middle, *dev.chain]) == [
        Problem(C.ISSUER_NOT_CA, f"Giả CA (serial {middle.serial_number:x}) is not a certification authority")
    ]


def test_an_intermediate_ca_without_certificate_signing_usage_breaks_the_chain(dev):
    middle, middle_key = _cert(
        dev.issuing_cert, dev.issuing_key, name="CA Thiếu Quyền", is_ca=True, usage={"crl_sign": True}
    )
    cert, _ = _cert(middle, middle_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, [middle, *dev.chain]) == [
        Problem(
            C.ISSUER_NOT_CA,
            f"CA Thiếu Quyền (serial {middle.serial_number:x}) is not a certification authority",
        )
    ]


# An intermediate CA without key usage, and a chain of five links: both built under the dev


# issuing CA, whose pathLenConstraint 0 forbids any CA below it, which the hand-written path


# builder never read. They live in tests/signing/test_certvalidator.py under a root that allows


# them (and the spent path length has its own test there).


def test_a_chain_longer_than_five_links_is_refused(dev):
    issuer, issuer_key = dev.issuing_cert, dev.issuing_key
    chain = []
    for n in range(6):
        issuer, issuer_key = _cert(
            issuer, issuer_key, name=f"CA {n}", is_ca=True, usage={"key_cert_sign": True, "crl_sign": True}
        )
        chain.insert(0, issuer)
    cert, _ = _cert(issuer, issuer_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, [*chain, *dev.chain]) == [Problem(C.CHAIN_TOO_LONG, "Certificate chain too long")]


def test_a_certificate_from_an_untrusted_ca_names_its_issuer(dev):
    other = ca.dev_ca("CA Lạ")
    cert, _ = _cert(other.issuing_cert, other.issuing_key, name="Người Lạ", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, other.chain) == [
        Problem(
            C.UNTRUSTED_ISSUER,
            f"No chain from Người Lạ (serial {cert.serial_number:x}) to a trusted root "
            f"(issuer {other.root_cert.subject.rfc4514_string()})",
        )
    ]


def test_a_certificate_not_yet_valid_at_the_signing_time_is_refused(dev):
    cert, _ = _cert(
        dev.issuing_cert,
        dev.issuing_key,
        name="Người Ký",
        is_ca=False,
        usage=SIGNER_USAGE,
        not_before=NOW + dt.timedelta(hours=1),
    )
    assert check(dev, cert) == [
        Problem(
            C.NOT_YET_VALID,
            f"Người Ký (serial {cert.serial_number:x}) was not yet valid at {NOW.isoformat()}",
        )
    ]


def test_a_certificate_expired_at_the_signing_time_is_refused(dev):
    cert, _ = _cert(
        dev.issuing_cert,
        dev.issuing_key,
        name="Người Ký",
        is_ca=False,
        usage=SIGNER_USAGE,
        not_before=NOW - dt.timedelta(days=10),
        not_after=NOW - dt.timedelta(seconds=1),
    )
    assert check(dev, cert) == [
        Problem(C.EXPIRED, f"Người Ký (serial {cert.serial_number:x}) had expired at {NOW.isoformat()}")
    ]


def test_a_revoked_signer_is_refused_with_the_revocation_date(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    revoking = ca.issue_crl(dev, [cert.serial_number])
    problems = check(dev, cert, crls=[revoking])
    assert [p.code for p in problems] == [C.REVOKED]
    assert problems[0].detail.startswith(f"Người Ký (serial {cert.serial_number:x}) was revoked on ")


def test_a_crl_signed_by_someone_else_is_not_believed(dev):
    """A CRL with the issuer's name but another key: ignored, so the status is unknown."""
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    twin = ca.dev_ca()  # same names, other keys
    assert twin.issuing_cert.subject == dev.issuing_cert.subject
    forged = ca.issue_crl(twin, [])
    assert check(dev, cert, crls=[forged]) == [
        Problem(
            C.REVOCATION_UNKNOWN,
            f"No CRL from {dev.issuing_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value} "
            f"(serial {dev.issuing_cert.serial_number:x}): revocation status of "
            f"Người Ký (serial {cert.serial_number:x}) unknown",
        )
    ]


def test_an_issuing_ca_without_a_crl_of_its_own_is_not_a_problem(dev):
    """Only the signer's status must be known: a missing CRL for the issuing CA is no problem."""
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, crls=[ca.issue_crl(dev, [])]) == []


def test_a_revoked_issuing_ca_revokes_its_signers(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    root_crl = x509.CertificateRevocationListBuilder().issuer_name(dev.root_cert.subject)
    root_crl = (
        root_crl.last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(dev.issuing_cert.serial_number)
            .revocation_date(NOW - dt.timedelta(hours=1))
            .build()
        )
        .sign(dev.root_key, hashes.SHA256())
    )
    problems = check(dev, cert, crls=[ca.issue_crl(dev, []), root_crl])
    assert [p.code for p in problems] == [C.REVOKED] and " was revoked on " in problems[0].detail
    assert problems[0].detail.startswith(
        dev.issuing_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    )


def test_a_self_issued_intermediate_outside_the_trust_store_is_no_chain(dev):
    """A chain that loops on itself ends there (no trusted root), instead of going round."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA Tự Ký")])
    loop = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, _ = _cert(loop, key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, [loop]) == [
        Problem(
            C.UNTRUSTED_ISSUER,
            f"No chain from Người Ký (serial {cert.serial_number:x}) to a trusted root (issuer CN=CA Tự Ký)",
        )
    ]


def test_a_certificate_signs_from_its_first_to_its_last_second_at_the_signing_time(dev):
    # Inside the issuing CA's own validity (it starts a day before the test CA was made).
    cert, _ = _cert(
        dev.issuing_cert,
        dev.issuing_key,
        name="Người Ký",
        is_ca=False,
        usage=SIGNER_USAGE,
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=10),
    )
    assert check(dev, cert, at=cert.not_valid_before_utc) == []
    assert check(dev, cert, at=cert.not_valid_after_utc) == []


def test_a_certificate_revoked_in_two_crls_is_reported_once(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    crls = [ca.issue_crl(dev, [cert.serial_number]), ca.issue_crl(dev, [cert.serial_number, 7])]
    problems = check(dev, cert, crls=crls)
    assert [p.code for p in problems] == [C.REVOKED]


def test_an_intermediate_without_basic_constraints_is_not_a_ca(dev):
    middle, middle_key = _cert(
        dev.issuing_cert, dev.issuing_key, name="Không Ràng Buộc", is_ca=None, usage=None
    )
    cert, _ = _cert(middle, middle_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert check(dev, cert, [middle, *dev.chain]) == [
        Problem(
            C.ISSUER_NOT_CA,
            f"Không Ràng Buộc (serial {middle.serial_number:x}) is not a certification authority",
        )
    ]


def test_a_look_alike_issuer_with_other_keys_is_no_chain(dev):
    twin = ca.dev_ca()  # the same names as the trusted CA, other keys
    cert, _ = _cert(twin.issuing_cert, twin.issuing_key, name="Người Giả", is_ca=False, usage=SIGNER_USAGE)
    assert [p.code for p in check(dev, cert, twin.chain)] == [C.UNTRUSTED_ISSUER]


def test_an_unknown_signer_status_does_not_hide_a_revoked_issuer(dev):
    cert, _ = _cert(dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    root_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(dev.root_cert.subject)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(dev.issuing_cert.serial_number)
            .revocation_date(NOW - dt.timedelta(hours=1))
            .build()
        )
        .sign(dev.root_key, hashes.SHA256())
    )
    assert [p.code for p in check(dev, cert, crls=[root_crl])] == [C.REVOCATION_UNKNOWN, C.REVOKED]
