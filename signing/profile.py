"""The signature profile of the year record: XAdES baseline B, appended one after another in <chuky>.

What one signature looks like (n = its position, 1-based; role one of ROLES, in that order)::

    <ds:Signature Id="<content Id>-sig-<n>-<role>">
      <ds:SignedInfo>
        CanonicalizationMethod  exclusive C14N 1.0
        SignatureMethod         rsa-sha256 or ecdsa-sha256
        Reference #<content Id>                 exc-c14n, sha256  (the record)
        Reference #<...>-sig-1-<role>           exc-c14n, sha256  (each earlier signature, in order)
        Reference #<...>-SignedProperties...    exc-c14n, sha256  (XAdES, Type=...#SignedProperties)
        Reference #<...>-keyinfo                exc-c14n, sha256  (the certificate)
      <ds:SignatureValue>
      <ds:KeyInfo Id="...-keyinfo"> X509Data: signer certificate, then the intermediates
      <ds:Object> QualifyingProperties / SignedProperties: SigningTime, SigningCertificateV2,
                  SignerRole/ClaimedRole = the role, DataObjectFormat of the content reference

Why these choices:

- Detached references by Id, never the root and never an enveloped transform: an earlier
  signature's bytes never change when a later one is appended, and each later one covers the
  earlier ones, so the order is in the signed bytes (transcripts/document/__init__.py).
- Exclusive C14N everywhere, every reference carrying its transform explicitly: a signature is
  built outside the document and then placed in <chuky>, under the record's default namespace.
  Inclusive C14N would pull that namespace into what is digested and make the digests depend on
  where the element sits; exclusive C14N does not, and it is what xmlsec1 computes too.
- The Id carries the content Id, so signatures of records bundled in one file never clash.
- Only X509Data in KeyInfo (no KeyValue next to it: two places for one key is an ambiguity).

The content bytes are never touched: the signature is appended to <chuky> and the document is
serialised as Canonical XML again, which reproduces the content bytes exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, methods
from signxml.util import ds_tag
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from transcripts.document import DocumentError, year_record_load
from transcripts.schema import NAMESPACE

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0.value
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

HOMEROOM_TEACHER = "homeroom_teacher"
PRINCIPAL = "principal"  # the principal, or a vice-principal on the principal's behalf
SEAL = "seal"
ROLES = (HOMEROOM_TEACHER, PRINCIPAL, SEAL)  # the signing order

SIGNATURE_ID = re.compile(r"^(?P<content>.+)-sig-(?P<n>[1-9][0-9]*)-(?P<role>[a-z_]+)$")

DATA_OBJECT_FORMAT = XAdESDataObjectFormat(
    Description="Học bạ số: hồ sơ một năm học (urn:hocbaso:year-record:1.0)", MimeType="text/xml"
)


class SigningError(Exception):
    """The document cannot be signed as asked; `code` says why, the message says it in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def signature_id(content_id: str, n: int, role: str) -> str:
    return f"{content_id}-sig-{n}-{role}"


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


class _ProfileSigner(XAdESSigner):
    """signxml's XAdES signer with our Ids, signing time and explicit exc-c14n transforms."""

    def __init__(self, *, sig_id: str, signing_time: dt.datetime, role: str, sign_alg: SignatureMethod):
        super().__init__(
            claimed_roles=[role],
            data_object_format=DATA_OBJECT_FORMAT,
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
        # The SignedProperties Id is "<signature Id>-SignedProperties<token>": one per signature.
        return ""

    def _add_reference_to_signed_info(self, sig_root, node_to_reference, **attrs):
        super()._add_reference_to_signed_info(sig_root, node_to_reference, **attrs)
        # signxml leaves these references without Transforms, which readers take to mean
        # inclusive C14N 1.0; say exc-c14n explicitly, as the digest was computed with it.
        reference = self._findall(self._find(sig_root, "SignedInfo"), "Reference")[-1]
        transforms = etree.Element(ds_tag("Transforms"))
        etree.SubElement(transforms, ds_tag("Transform"), Algorithm=EXC_C14N)
        reference.insert(0, transforms)

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
        element = etree.SubElement(signed_signature_properties, f"{{{XADES}}}SigningTime")
        element.text = self._signing_time.astimezone(dt.UTC).isoformat(timespec="seconds")


def _signature_method(key) -> SignatureMethod:
    if isinstance(key, rsa.RSAPrivateKey) or getattr(key, "algorithm", None) == "rsa":
        if key.key_size < 2048:
            raise SigningError("weak_key", "RSA keys must have at least 2048 bits")
        return SignatureMethod.RSA_SHA256
    if isinstance(key, ec.EllipticCurvePrivateKey) or getattr(key, "algorithm", None) == "ec":
        if key.curve.name != "secp256r1":
            raise SigningError("unsupported_key", "ECDSA keys must be on P-256")
        return SignatureMethod.ECDSA_SHA256
    raise SigningError("unsupported_key", "Only RSA-2048 and ECDSA P-256 keys can sign year records")


def existing_signatures(root: etree._Element) -> list[etree._Element]:
    """The ds:Signature elements of <chuky>, in document order."""
    chuky = root.find(_q("chuky"))
    return [] if chuky is None else [el for el in chuky if el.tag == f"{{{DS}}}Signature"]


def sign_year_record(
    xml: bytes,
    *,
    key,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    role: str,
    signing_time: dt.datetime | None = None,
) -> bytes:
    """The document with one more XAdES signature appended to <chuky>, as Canonical XML bytes.

    `role` must be the next one in ROLES (homeroom teacher, then principal, then the seal).
    Certificates are not judged here: whether this signer may sign (registered certificate,
    validity, revocation, role in the school) is checked by the caller before signing, with
    `signing.verify.certificate_problems`. Raises SigningError or DocumentError.
    """
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
        sign_alg=_signature_method(key),
    )
    signature = signer.sign(
        root,
        key=key,
        cert=[cert, *chain],
        reference_uri=[f"#{content_id}", *(f"#{i}" for i in earlier_ids)],
        id_attribute="Id",
        always_add_key_value=False,
    )
    root.find(_q("chuky")).append(signature)
    signed = etree.tostring(root, method="c14n")
    if content_bytes(signed) != content_bytes(xml):  # a guard: this must never happen
        raise DocumentError("invalid", "Signing changed the content bytes")
    return signed


def content_bytes(xml: bytes) -> bytes:
    """The bytes of the <thongtinhocba> element as they appear in the document."""
    start = xml.index(b"<thongtinhocba")
    end = xml.index(b"</thongtinhocba>", start) + len(b"</thongtinhocba>")
    return xml[start:end]
