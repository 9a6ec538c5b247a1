# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""The signer's certificate path and its revocation, judged by pyhanko-certvalidator (signing.verify).

What the library adds to the hand-written checks it replaced (RFC 5280's pathLenConstraint), and
the choices the portal makes on top of it: pinned roots only, nothing fetched, a revocation at any
date refused (no trusted signing time), a stale CRL still believed (its freshness is logged by
signing.trust, not enforced), validity judged at the signing time. Pure: no database.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from signing import ca
from signing.choices import Problem, ProblemCode
from signing.verify import certificate_problems
from tests.signing.test_profile import dev  # noqa: F401
from tests.signing.verify_kit import SIGNER_USAGE, _cert

C = ProblemCode
NOW = dt.datetime.now(dt.UTC)
CA_USAGE = {"key_cert_sign": True, "crl_sign": True}


def _open_root(name: str = "Gốc Không Giới Hạn"):
    """A self-signed root CA without a path length constraint."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _crl(issuer_cert, issuer_key, revoked=(), *, this_update=None, next_update=None):
    this_update = this_update or NOW - dt.timedelta(hours=1)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update or this_update + dt.timedelta(days=1))
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _signer(dev, **kwargs):
    cert, _ = _cert(
        dev.issuing_cert, dev.issuing_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE, **kwargs
    )
    return cert


def test_a_ca_made_below_an_issuer_whose_path_length_is_spent_is_a_chain_too_long(dev):
    """The development issuing CA may issue no CA (pathLenConstraint 0): one it made anyway
    cannot vouch for a signer. The hand-written path builder did not read the constraint."""
    middle, middle_key = _cert(dev.issuing_cert, dev.issuing_key, name="CA Lậu", is_ca=True, usage=CA_USAGE)
    cert, _ = _cert(middle, middle_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    problems = certificate_problems(
        cert, [middle, *dev.chain], trust_roots=dev.roots, crls=[ca.issue_crl(dev, [])], at=NOW
    )
    issuing_cn = dev.issuing_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert problems == [
        Problem(
            C.CHAIN_TOO_LONG,
            f"Certificate chain too long: {issuing_cn} (serial {dev.issuing_cert.serial_number:x}) "
            "allows 0 CA(s) below it (pathLenConstraint)",
        )
    ]


def test_an_intermediate_ca_without_key_usage_may_issue_below_a_root_that_allows_it():
    root, root_key = _open_root()
    middle, middle_key = _cert(root, root_key, name="CA Cũ", is_ca=True, usage=None)
    cert, _ = _cert(middle, middle_key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    problems = certificate_problems(cert, [middle], trust_roots=[root], crls=[_crl(root, root_key)], at=NOW)
    assert problems == [
        Problem(
            C.REVOCATION_UNKNOWN,
            f"No CRL from CA Cũ (serial {middle.serial_number:x}): revocation status of "
            f"Người Ký (serial {cert.serial_number:x}) unknown",
        )
    ]


def _chain_below(root, root_key, depth: int):
    """`depth` CAs below `root`, the deepest first, and the deepest one's key."""
    issuer, issuer_key = root, root_key
    chain: list[x509.Certificate] = []
    for n in range(depth):
        issuer, issuer_key = _cert(issuer, issuer_key, name=f"CA {n}", is_ca=True, usage=CA_USAGE)
        chain.insert(0, issuer)
    return chain, issuer_key


def test_five_certificates_below_a_root_without_a_path_length_reach_it_and_six_do_not():
    root, root_key = _open_root()
    chain, key = _chain_below(root, root_key, 4)
    signer, _ = _cert(chain[0], key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    codes = [p.code for p in certificate_problems(signer, chain, trust_roots=[root], crls=[], at=NOW)]
    assert codes == [C.REVOCATION_UNKNOWN]  # the path holds; no CRL from CA 3
    chain, key = _chain_below(root, root_key, 5)
    signer, _ = _cert(chain[0], key, name="Người Ký", is_ca=False, usage=SIGNER_USAGE)
    assert certificate_problems(signer, chain, trust_roots=[root], crls=[], at=NOW) == [
        Problem(C.CHAIN_TOO_LONG, "Certificate chain too long")
    ]


def test_a_signer_revoked_after_it_signed_is_refused_all_the_same(dev):
    """No trusted signing time (baseline B): a revocation at any date counts, not only one
    before the claimed signing time (pyhanko's point-in-time rule is not used for revocation)."""
    signed_at = NOW - dt.timedelta(
        hours=12
    )  # inside the issuing CA's validity (from a day before it was made)
    cert = _signer(dev, not_before=NOW - dt.timedelta(days=2))
    revoked = ca.issue_crl(dev, [cert.serial_number])
    problems = certificate_problems(cert, dev.chain, trust_roots=dev.roots, crls=[revoked], at=signed_at)
    assert [p.code for p in problems] == [C.REVOKED]
    assert problems[0].detail.startswith(f"Người Ký (serial {cert.serial_number:x}) was revoked on ")


def test_a_crl_past_its_next_update_still_decides(dev):
    """Freshness is logged (signing.trust), not enforced: a stale CRL revokes, and vouches."""
    cert = _signer(dev)
    past = NOW - dt.timedelta(days=10)
    stale = [(cert.serial_number, past)]
    revoking = _crl(dev.issuing_cert, dev.issuing_key, stale, this_update=past, next_update=past)
    problems = certificate_problems(cert, dev.chain, trust_roots=dev.roots, crls=[revoking], at=NOW)
    assert [p.code for p in problems] == [C.REVOKED]
    clean = _crl(dev.issuing_cert, dev.issuing_key, this_update=past, next_update=past)
    assert certificate_problems(cert, dev.chain, trust_roots=dev.roots, crls=[clean], at=NOW) == []


def test_a_certificate_expired_today_is_judged_at_its_signing_time(dev):
    """Validity at the signing time, not now (the long-term signatures issue builds on it)."""
    cert = _signer(dev, not_before=NOW - dt.timedelta(days=1), not_after=NOW - dt.timedelta(minutes=1))
    crls = [ca.issue_crl(dev, [])]
    at = NOW - dt.timedelta(hours=1)
    assert certificate_problems(cert, dev.chain, trust_roots=dev.roots, crls=crls, at=at) == []
    assert [
        p.code for p in certificate_problems(cert, dev.chain, trust_roots=dev.roots, crls=crls, at=NOW)
    ] == [C.EXPIRED]


def test_a_root_in_the_signature_but_not_in_the_trust_store_is_no_anchor(dev):
    """Only the pinned roots anchor a path: a root the document carries is an intermediate at best."""
    other = ca.dev_ca("CA Ngoài")
    cert, _ = _cert(other.issuing_cert, other.issuing_key, name="Người Lạ", is_ca=False, usage=SIGNER_USAGE)
    problems = certificate_problems(
        cert, other.chain, trust_roots=dev.roots, crls=[ca.issue_crl(other, [])], at=NOW
    )
    assert [p.code for p in problems] == [C.UNTRUSTED_ISSUER]


def test_a_signer_whose_certificate_names_a_crl_url_is_not_fetched_for(dev):
    """Nothing is fetched (the CRLs are the trust store's): an unreachable distribution point
    answers at once that the status is unknown."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier("http://192.0.2.1/never.crl")],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Người Ký")]))
        .issuer_name(dev.issuing_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.CRLDistributionPoints([point]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(dev.issuing_key, hashes.SHA256())
    )
    started = dt.datetime.now(dt.UTC)
    problems = certificate_problems(cert, dev.chain, trust_roots=dev.roots, crls=[], at=NOW)
    assert [p.code for p in problems] == [C.REVOCATION_UNKNOWN]
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(seconds=2)


def test_a_certificate_is_checked_from_inside_a_running_event_loop(dev):
    """Playwright's sync API (the browser tests) leaves an event loop running in the main thread,
    and an async caller has one: the check must not depend on there being none."""
    import asyncio
    import concurrent.futures

    cert = _signer(dev)

    async def inside():
        return certificate_problems(
            cert, dev.chain, trust_roots=dev.roots, crls=[ca.issue_crl(dev, [])], at=NOW
        )

    # On a thread of its own: the browser tests may have left a loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, inside()).result() == []
