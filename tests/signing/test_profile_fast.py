"""signing.profile builds its signatures itself: the same bytes signxml's XAdESSigner produced.

`reference_sign_year_record` below is a private copy of sign_year_record as it was when it used
signxml's XAdESSigner (the subclass _ProfileSigner), kept here as the yardstick: for the same key,
certificates, role and signing time, the new builder must give the very same document. RSA
PKCS#1 v1.5 is deterministic, so the whole bytes are compared; ECDSA is not, so its documents are
compared with the SignatureValue of the new signature blanked, and compared whole when the key
signs with deterministic ECDSA (RFC 6979), which also pins the DER → r‖s conversion. Keys held
elsewhere (a DigestSigner: PKCS#11, CSC) are stood in for by a DigestSigner wrapping a local key.

Pure: no database.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, methods
from signxml.util import ds_tag
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from signing import ca
from signing.backends import DigestSigner
from signing.profile import (
    DS,
    ROLES,
    SIGNATURE_ID,
    XADES,
    SigningError,
    content_bytes,
    existing_signatures,
    sign_year_record,
    signature_id,
)
from signing.verify import all_valid, verify_year_record
from tests.signing.xmlsec import write_pems, xmlsec1_results
from tests.transcripts.test_document import primary_record, secondary_record
from transcripts.document import DocumentError, year_record_load, year_record_xml
from transcripts.schema import NAMESPACE

ROOT = Path(__file__).resolve().parents[2]

# The reference: sign_year_record as it was with signxml's XAdESSigner --------------------------

# Its own constants, not the module's: the reference must not move when signing.profile does.
_EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
_XADES = "http://uri.etsi.org/01903/v1.3.2#"
_DATA_OBJECT_FORMAT = XAdESDataObjectFormat(
    Description="Học bạ số: hồ sơ một năm học (urn:hocbaso:year-record:1.0)", MimeType="text/xml"
)


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


class _ProfileSigner(XAdESSigner):
    """signxml's XAdES signer with our Ids, signing time and explicit exc-c14n transforms."""

    def __init__(self, *, sig_id: str, signing_time: dt.datetime, role: str, sign_alg: SignatureMethod):
        super().__init__(
            claimed_roles=[role],
            data_object_format=_DATA_OBJECT_FORMAT,
            method=methods.detached,
            signature_algorithm=sign_alg,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        self._sig_id = sig_id
        self._signing_time = signing_time

    def _unpack(self, data, references):
        sig_root, doc_root, c14n_inputs, references = super()._unpack(data, references)
        sig_root.set("Id", self._sig_id)
        return sig_root, doc_root, c14n_inputs, references

    def _build_xades_ds_object(self, sig_root, signing_settings):
        key_info = self._find(sig_root, "KeyInfo")
        key_info.set("Id", f"{self._sig_id}-keyinfo")
        for i, reference in enumerate(self._findall(self._find(sig_root, "SignedInfo"), "Reference")):
            reference.set("Id", f"{self._sig_id}-ref-{'content' if i == 0 else i}")
        super()._build_xades_ds_object(sig_root, signing_settings)

    def _get_token(self, length=4):
        return ""

    def _add_reference_to_signed_info(self, sig_root, node_to_reference, **attrs):
        super()._add_reference_to_signed_info(sig_root, node_to_reference, **attrs)
        reference = self._findall(self._find(sig_root, "SignedInfo"), "Reference")[-1]
        transforms = etree.Element(ds_tag("Transforms"))
        etree.SubElement(transforms, ds_tag("Transform"), Algorithm=_EXC_C14N)
        reference.insert(0, transforms)

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
        element = etree.SubElement(signed_signature_properties, f"{{{_XADES}}}SigningTime")
        element.text = self._signing_time.astimezone(dt.UTC).isoformat(timespec="seconds")


def _reference_signature_method(key) -> SignatureMethod:
    if isinstance(key, rsa.RSAPrivateKey) or getattr(key, "algorithm", None) == "rsa":
        if key.key_size < 2048:
            raise SigningError("weak_key", "RSA keys must have at least 2048 bits")
        return SignatureMethod.RSA_SHA256
    if isinstance(key, ec.EllipticCurvePrivateKey) or getattr(key, "algorithm", None) == "ec":
        if key.curve.name != "secp256r1":
            raise SigningError("unsupported_key", "ECDSA keys must be on P-256")
        return SignatureMethod.ECDSA_SHA256
    raise SigningError("unsupported_key", "Only RSA-2048 and ECDSA P-256 keys can sign year records")


def reference_sign_year_record(
    xml: bytes,
    *,
    key,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    role: str,
    signing_time: dt.datetime | None = None,
) -> bytes:
    root = year_record_load(xml)
    earlier = existing_signatures(root)
    n = len(earlier) + 1
    if n > len(ROLES):
        raise SigningError("complete", "The record already carries all its signatures")
    if role != ROLES[n - 1]:
        expected = ROLES[n - 1]
        raise SigningError("wrong_order", f"Signature {n} must be the {expected}'s, not the {role}'s")
    content = root.find(_q("thongtinhocba"))
    content_id = content.get("Id")
    earlier_ids = [el.get("Id") for el in earlier]
    for i, sig_id in enumerate(earlier_ids, start=1):
        match = SIGNATURE_ID.match(sig_id or "")
        if not match or match["content"] != content_id or int(match["n"]) != i:
            raise SigningError("malformed", f"Earlier signature {i} is not one of this profile ({sig_id!r})")
    sig_id = signature_id(content_id, n, role)
    signer = _ProfileSigner(
        sig_id=sig_id,
        signing_time=signing_time or dt.datetime.now(dt.UTC),
        role=role,
        sign_alg=_reference_signature_method(key),
    )
    signature = signer.sign(
        root,
        key=key,
        cert=[cert, *chain],
        reference_uri=[f"#{content_id}", *(f"#{i}-value" for i in earlier_ids)],
        id_attribute="Id",
        always_add_key_value=False,
    )
    # The profile names the SignatureValue so that later signatures can cover it (set after
    # signxml signed: the value is outside what its own signature covers).
    signature.find(f"{{{DS}}}SignatureValue").set("Id", f"{sig_id}-value")
    root.find(_q("chuky")).append(signature)
    signed = etree.tostring(root, method="c14n")
    if content_bytes(signed) != content_bytes(xml):
        raise DocumentError("invalid", "Signing changed the content bytes")
    return signed


# Keys --------------------------------------------------------------------------------------------


class LocalDigestSigner(DigestSigner):
    """A DigestSigner (the shape of PKCS#11 and CSC keys) over a local key; deterministic ECDSA."""

    def __init__(self, key):
        self._key = key
        self.algorithm = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ec"
        self.key_size = key.key_size
        self.calls: list[dict] = []

    def sign(self, data, padding=None, algorithm=None, signature_algorithm=None):
        self.calls.append(
            {"padding": padding, "algorithm": algorithm, "signature_algorithm": signature_algorithm}
        )
        return super().sign(
            data, padding=padding, algorithm=algorithm, signature_algorithm=signature_algorithm
        )

    def sign_digest(self, digest: bytes) -> bytes:
        prehashed = Prehashed(hashes.SHA256())
        if self.algorithm == "rsa":
            return self._key.sign(digest, padding.PKCS1v15(), prehashed)
        return self._key.sign(digest, ec.ECDSA(prehashed, deterministic_signing=True))


class DeterministicEC:
    """A cryptography EC key as signxml called it, signing with RFC 6979 nonces: same bytes twice."""

    def __init__(self, key: ec.EllipticCurvePrivateKey):
        self._key = key
        self.key_size = key.key_size
        self.curve = key.curve
        self.algorithm = "ec"

    def sign(self, data, signature_algorithm):
        assert isinstance(signature_algorithm, ec.ECDSA)
        assert isinstance(signature_algorithm.algorithm, hashes.SHA256)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


# A fixed time for both implementations, inside the development certificates' validity, not in UTC.
WHEN = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).replace(microsecond=123456)


@pytest.fixture(scope="module")
def dev():
    return ca.dev_ca()


@pytest.fixture(scope="module")
def rsa_signers(dev):
    """The three roles with RSA-2048 keys: every signature deterministic."""
    return {
        "homeroom_teacher": ca.issue_person(
            dev, common_name="Lê Thị Mỹ Duyên", title="Giáo viên chủ nhiệm", algorithm="rsa"
        ),
        "principal": ca.issue_person(
            dev, common_name="Bùi Văn Nam", title="Phó Hiệu trưởng", algorithm="rsa"
        ),
        "seal": ca.issue_organisation(
            dev, name="Trường Tiểu học Kim Đồng", province="Lào Cai", algorithm="rsa"
        ),
    }


@pytest.fixture(scope="module")
def mixed_signers(dev, rsa_signers):
    """As in production: the teacher RSA-2048, the principal and the seal ECDSA P-256."""
    return {
        "homeroom_teacher": rsa_signers["homeroom_teacher"],
        "principal": ca.issue_person(dev, common_name="Bùi Văn Nam", title="Phó Hiệu trưởng"),
        "seal": ca.issue_organisation(dev, name="Trường Tiểu học Kim Đồng", province="Lào Cai"),
    }


@pytest.fixture(scope="module", params=["primary", "secondary"])
def unsigned(request):
    return year_record_xml(primary_record() if request.param == "primary" else secondary_record())


SIGNATURE_VALUE = re.compile(rb"<ds:SignatureValue[^>]*>[^<]*</ds:SignatureValue>")


def blank_last_signature_value(xml: bytes) -> bytes:
    values = list(SIGNATURE_VALUE.finditer(xml))
    last = values[-1]
    return xml[: last.start()] + b"<ds:SignatureValue/>" + xml[last.end() :]


def both(xml: bytes, *, key, issued, role: str, chain=None, when=WHEN) -> tuple[bytes, bytes]:
    chain = issued.chain if chain is None else chain
    kwargs = dict(key=key, cert=issued.cert, chain=chain, role=role, signing_time=when)
    return sign_year_record(xml, **kwargs), reference_sign_year_record(xml, **kwargs)


# Byte identity -----------------------------------------------------------------------------------


def test_rsa_whole_bytes_for_each_role_in_sequence(unsigned, rsa_signers, dev):
    xml = unsigned
    for role in ROLES:
        issued = rsa_signers[role]
        new, old = both(xml, key=issued.key, issued=issued, role=role)
        assert new == old, role
        xml = new
    reports = verify_year_record(xml, trust_roots=dev.roots, crls=[ca.issue_crl(dev)])
    assert [r.problems for r in reports] == [(), (), ()]
    assert all_valid(reports)


def test_ecdsa_equal_but_for_the_signature_value(unsigned, mixed_signers, dev):
    xml = unsigned
    for role in ROLES:
        issued = mixed_signers[role]
        new, old = both(xml, key=issued.key, issued=issued, role=role)
        if role == "homeroom_teacher":
            assert new == old
        else:
            assert new != old  # ECDSA draws a fresh nonce
            assert blank_last_signature_value(new) == blank_last_signature_value(old), role
        xml = new  # both go on from the same document
    reports = verify_year_record(xml, trust_roots=dev.roots, crls=[ca.issue_crl(dev)])
    assert all_valid(reports), [r.problems for r in reports]


def test_deterministic_ecdsa_whole_bytes(unsigned, mixed_signers):
    """With RFC 6979 nonces the ECDSA value is reproducible: the r‖s encoding is the same too."""
    xml = unsigned
    for role in ROLES:
        issued = mixed_signers[role]
        key = issued.key if role == "homeroom_teacher" else DeterministicEC(issued.key)
        new, old = both(xml, key=key, issued=issued, role=role)
        assert new == old, role
        xml = new
    value = SIGNATURE_VALUE.findall(xml)[-1]
    assert len(etree.fromstring(b'<x xmlns:ds="d">' + value + b"</x>")[0].text) == 88  # 64 bytes, base64


@pytest.mark.parametrize("chain", ["none", "issuing", "issuing+root"])
def test_chains(unsigned, rsa_signers, dev, chain):
    chains = {"none": (), "issuing": dev.chain, "issuing+root": (*dev.chain, *dev.roots)}
    xml = unsigned
    for role in ROLES:
        issued = rsa_signers[role]
        new, old = both(xml, key=issued.key, issued=issued, role=role, chain=chains[chain])
        assert new == old, role
        xml = new
    certificates = etree.fromstring(xml).findall(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert len(certificates) == 3 * (1 + len(chains[chain]))


def test_same_certificate_other_chain_is_not_served_from_the_cache(unsigned, rsa_signers, dev):
    issued = rsa_signers["homeroom_teacher"]
    for chain in ((), dev.chain, (), (*dev.chain, *dev.roots), dev.chain):
        new, old = both(unsigned, key=issued.key, issued=issued, role="homeroom_teacher", chain=chain)
        assert new == old


@pytest.mark.parametrize("algorithm", ["rsa", "ec"])
def test_digest_signer_keys(unsigned, rsa_signers, mixed_signers, algorithm):
    """A key held elsewhere is called as signxml called it, and gives the same document."""
    signers = rsa_signers if algorithm == "rsa" else mixed_signers
    xml = unsigned
    for role in ROLES:
        issued = signers[role]
        key = LocalDigestSigner(issued.key)
        new, old = both(xml, key=key, issued=issued, role=role)
        assert new == old, role
        xml = new
        new_call, old_call = key.calls
        assert set(new_call) == set(old_call)
        for name in ("padding", "algorithm", "signature_algorithm"):
            assert type(new_call[name]) is type(old_call[name]), name
        if role == "homeroom_teacher" or algorithm == "rsa":
            assert isinstance(new_call["padding"], padding.PKCS1v15)
            assert isinstance(new_call["algorithm"], hashes.SHA256)
        else:
            assert isinstance(new_call["signature_algorithm"], ec.ECDSA)
            assert isinstance(new_call["signature_algorithm"].algorithm, hashes.SHA256)


@pytest.mark.parametrize(
    "when",
    [
        WHEN,
        dt.datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 6, 0, 0, 500, tzinfo=dt.timezone(dt.timedelta(hours=7))),
    ],
)
def test_signing_times(unsigned, rsa_signers, when):
    issued = rsa_signers["homeroom_teacher"]
    new, old = both(unsigned, key=issued.key, issued=issued, role="homeroom_teacher", when=when)
    assert new == old
    assert when.astimezone(dt.UTC).isoformat(timespec="seconds").encode() in new


def test_default_signing_time_is_now(unsigned, rsa_signers):
    issued = rsa_signers["homeroom_teacher"]
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    xml = sign_year_record(
        unsigned, key=issued.key, cert=issued.cert, chain=issued.chain, role="homeroom_teacher"
    )
    after = dt.datetime.now(dt.UTC)
    text = etree.fromstring(xml).findtext(f".//{{{XADES}}}SigningTime")
    assert before <= dt.datetime.fromisoformat(text) <= after
    assert text.endswith("+00:00")


def test_non_canonical_input_gives_the_same_canonical_output(unsigned, rsa_signers):
    """An XML declaration and a self-closed <chuky/>: both serialise the document as C14N again."""
    issued = rsa_signers["homeroom_teacher"]
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + unsigned.replace(b"<chuky></chuky>", b"<chuky/>")
    assert xml != unsigned
    new, old = both(xml, key=issued.key, issued=issued, role="homeroom_teacher")
    assert new == old
    assert new == both(unsigned, key=issued.key, issued=issued, role="homeroom_teacher")[0]


def test_comments_and_processing_instructions_in_the_content(unsigned, rsa_signers, dev):
    """Kept in the document's Canonical XML, left out of the exclusive C14N that is digested."""
    start = unsigned.index(b">", unsigned.index(b"<thongtinhocba")) + 1
    xml = unsigned[:start] + b"<!-- ghi ch\xc3\xba --><?hocba note?>" + unsigned[start:]
    year_record_load(xml)
    for role in ROLES:
        issued = rsa_signers[role]
        new, old = both(xml, key=issued.key, issued=issued, role=role)
        assert new == old, role
        xml = new
    assert b"<!-- ghi ch\xc3\xba --><?hocba note?>" in content_bytes(xml)
    reports = verify_year_record(xml, trust_roots=dev.roots, crls=[ca.issue_crl(dev)])
    assert all_valid(reports), [r.problems for r in reports]


# The guards --------------------------------------------------------------------------------------


def _raises(exception, xml, **kwargs):
    """Both implementations refuse, with the same error code."""
    codes = []
    for function in (sign_year_record, reference_sign_year_record):
        with pytest.raises(exception) as error:
            function(xml, **kwargs)
        codes.append(error.value.code)
    assert codes[0] == codes[1]
    return codes[0]


def test_guards_order_complete_malformed(unsigned, rsa_signers):
    def kw(role, **more):
        issued = rsa_signers[role]
        return dict(
            key=issued.key, cert=issued.cert, chain=issued.chain, role=role, signing_time=WHEN, **more
        )

    assert _raises(SigningError, unsigned, **kw("principal")) == "wrong_order"
    one = sign_year_record(unsigned, **kw("homeroom_teacher"))
    assert _raises(SigningError, one, **kw("homeroom_teacher")) == "wrong_order"
    assert _raises(SigningError, one, **kw("seal")) == "wrong_order"
    renamed = one.replace(b'-sig-1-homeroom_teacher"', b'-sig-2-homeroom_teacher"', 1)
    assert _raises(SigningError, renamed, **kw("principal")) == "malformed"
    three = sign_year_record(sign_year_record(one, **kw("principal")), **kw("seal"))
    assert _raises(SigningError, three, **kw("seal")) == "complete"


def test_guards_keys(unsigned, dev):
    issued = ca.issue_person(dev, common_name="A", title="B", algorithm="rsa")
    kw = dict(cert=issued.cert, chain=issued.chain, role="homeroom_teacher", signing_time=WHEN)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point)
    assert _raises(SigningError, unsigned, key=weak, **kw) == "weak_key"
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert _raises(SigningError, unsigned, key=p384, **kw) == "unsupported_key"
    assert _raises(SigningError, unsigned, key=object(), **kw) == "unsupported_key"


def test_guard_content_bytes_unchanged(unsigned, rsa_signers):
    """Content bytes that Canonical XML would write otherwise: signing would change them."""
    issued = rsa_signers["homeroom_teacher"]
    start = unsigned.index(b"<thongtinhocba")
    id_value = etree.fromstring(unsigned).find(_q("thongtinhocba")).get("Id").encode()
    xml = unsigned[:start] + unsigned[start:].replace(b'Id="' + id_value + b'"', b"Id='" + id_value + b"'", 1)
    kw = dict(
        key=issued.key, cert=issued.cert, chain=issued.chain, role="homeroom_teacher", signing_time=WHEN
    )
    assert _raises(DocumentError, xml, **kw) == "invalid"


def test_not_a_year_record(rsa_signers):
    issued = rsa_signers["homeroom_teacher"]
    kw = dict(
        key=issued.key, cert=issued.cert, chain=issued.chain, role="homeroom_teacher", signing_time=WHEN
    )
    assert _raises(DocumentError, b"<nope", **kw) == "not_xml"


def test_a_referenced_id_used_twice_is_refused(unsigned, rsa_signers):
    """An element in <chuky> carrying the content's Id (the schema lets ds:* in laxly). signxml
    fell back to digesting the whole document under the content's URI (a signature no verifier
    accepts) or failed with an IndexError; the builder refuses it as malformed."""
    issued = rsa_signers["homeroom_teacher"]
    content_id = etree.fromstring(unsigned).find(_q("thongtinhocba")).get("Id")
    decoy = f'<ds:Object xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="{content_id}"></ds:Object>'
    xml = unsigned.replace(b"<chuky></chuky>", b"<chuky>" + decoy.encode() + b"</chuky>")
    year_record_load(xml)  # the schema accepts it
    kw = dict(
        key=issued.key, cert=issued.cert, chain=issued.chain, role="homeroom_teacher", signing_time=WHEN
    )
    with pytest.raises(SigningError) as error:
        sign_year_record(xml, **kw)
    assert error.value.code == "malformed"


def test_signing_does_not_load_signxml():
    """signxml is the verifier's engine only: signing a record neither imports nor calls it."""
    code = (
        "import sys\n"
        "from signing import ca\n"
        "from signing.profile import sign_year_record\n"
        "from tests.transcripts.test_document import primary_record\n"
        "from transcripts.document import year_record_xml\n"
        "issued = ca.issue_person(ca.dev_ca(), common_name='A', title='B', algorithm='rsa')\n"
        "sign_year_record(year_record_xml(primary_record()), key=issued.key, cert=issued.cert,\n"
        "                 chain=issued.chain, role='homeroom_teacher')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'signxml'))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


# Other verifiers ---------------------------------------------------------------------------------


def test_xmlsec1_accepts_digest_signer_signatures(unsigned, mixed_signers, dev, tmp_path):
    xml = unsigned
    for role in ROLES:
        issued = mixed_signers[role]
        xml = sign_year_record(
            xml, key=LocalDigestSigner(issued.key), cert=issued.cert, chain=issued.chain, role=role
        )
    assert xmlsec1_results(xml, write_pems(dev, tmp_path / "pems"), tmp_path) == [True, True, True]


# The two ways of building a signature (signing.profile_text) ------------------------------------

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'  # makes the input non-canonical: the tree path


class _FixedTimestamper:
    """A TSA's answers fixed in advance, so that the two paths can be compared byte for byte (the
    real TSA client and its checks are tests/signing/test_timestamps.py's)."""

    def __init__(self):
        self.inputs: list[bytes] = []

    def stamp_many(self, data: Sequence[bytes]) -> list[bytes]:
        self.inputs += data
        return [b"token over " + d for d in data]


def test_the_text_path_serves_the_documents_the_portal_stores(unsigned, rsa_signers):
    """Canonical XML in, signature after signature: each step is spliced as text, not re-serialised."""
    from signing.profile import _spliceable

    xml = unsigned
    for role in ROLES:
        assert _spliceable(xml, year_record_load(xml)), role
        issued = rsa_signers[role]
        xml = sign_year_record(xml, key=issued.key, cert=issued.cert, chain=issued.chain, role=role)
    assert not _spliceable(DECLARATION + unsigned, year_record_load(DECLARATION + unsigned))


@pytest.mark.parametrize("stamped", [False, True], ids=["plain", "timestamped"])
def test_text_and_tree_paths_write_the_same_bytes(unsigned, rsa_signers, stamped):
    xml = unsigned
    for role in ROLES:
        issued = rsa_signers[role]
        kw = dict(key=issued.key, cert=issued.cert, chain=issued.chain, role=role, signing_time=WHEN)
        text_stamps, tree_stamps = _FixedTimestamper(), _FixedTimestamper()
        by_text = sign_year_record(xml, **kw, timestamper=text_stamps if stamped else None)
        by_tree = sign_year_record(DECLARATION + xml, **kw, timestamper=tree_stamps if stamped else None)
        assert by_text == by_tree, role
        assert text_stamps.inputs == tree_stamps.inputs  # the timestamps are over the same bytes
        xml = by_text


def test_text_path_content_digest_with_comments_and_declarations_in_the_record(unsigned, rsa_signers):
    """The content's digest is taken from the bytes only when they say it all; a comment anywhere
    before the content's end (one that mimics the content's start tag, here) sends it to the tree."""
    issued = rsa_signers["homeroom_teacher"]
    kw = dict(
        key=issued.key, cert=issued.cert, chain=issued.chain, role="homeroom_teacher", signing_time=WHEN
    )
    start = unsigned.index(b"<thongtinhocba")
    hostile = unsigned[:start] + b'<!-- <thongtinhocba Id="x"> -->' + unsigned[start:]
    year_record_load(hostile)
    assert sign_year_record(hostile, **kw) == reference_sign_year_record(hostile, **kw)
