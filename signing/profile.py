"""The signature profile of the year record: XAdES baseline B, appended one after another in <chuky>.

What one signature looks like (n = its position, 1-based; role one of ROLES, in that order)::

    <ds:Signature Id="<content Id>-sig-<n>-<role>">
      <ds:SignedInfo>
        CanonicalizationMethod  exclusive C14N 1.0
        SignatureMethod         rsa-sha256 or ecdsa-sha256
        Reference #<content Id>                 exc-c14n, sha256  (the record)
        Reference #<...>-sig-1-<role>-value     exc-c14n, sha256  (each earlier SignatureValue, in order)
        Reference #<...>-SignedProperties...    exc-c14n, sha256  (XAdES, Type=...#SignedProperties)
        Reference #<...>-keyinfo                exc-c14n, sha256  (the certificate)
      <ds:SignatureValue Id="...-value">
      <ds:KeyInfo Id="...-keyinfo"> X509Data: signer certificate, then the intermediates
      <ds:Object> QualifyingProperties / SignedProperties: SigningTime, SigningCertificateV2,
                  SignerRole/ClaimedRole = the role, DataObjectFormat of the content reference
                  QualifyingProperties / UnsignedProperties / UnsignedSignatureProperties:
                    SignatureTimeStamp (XAdES-T, when a TSA is configured): an RFC 3161 token
                      over the exclusive C14N of ds:SignatureValue, added when the signature is made;
                    CertificateValues, RevocationValues (XAdES-LT): the chains' certificates and
                      the CRLs, added to every signature when the seal issues the record;
                    xadesv141:TimeStampValidationData, xadesv141:ArchiveTimeStamp (XAdES-LTA):
                      added later by `manage.py archive_timestamp` (signing.longterm).

Why these choices:

- Detached references by Id, never the root and never an enveloped transform: an earlier
  signature's signed bytes never change when a later one is appended, and each later one covers
  the earlier ones' SignatureValue (as a XAdES countersignature does), so the order is in the
  signed bytes (transcripts/document/__init__.py). Covering the SignatureValue, not the whole
  ds:Signature, is what lets unsigned properties (timestamps, validation data, archive
  timestamps) be added to an earlier signature later without breaking the ones after it; the
  SignatureValue binds its SignedInfo, which binds the signature's properties and certificate.
- Exclusive C14N everywhere, every reference carrying its transform explicitly: a signature is
  built outside the document and then placed in <chuky>, under the record's default namespace.
  Inclusive C14N would pull that namespace into what is digested and make the digests depend on
  where the element sits; exclusive C14N does not, and it is what xmlsec1 computes too.
- The Id carries the content Id, so signatures of records bundled in one file never clash.
- Only X509Data in KeyInfo (no KeyValue next to it: two places for one key is an ambiguity).

The content bytes are never touched: the signature is appended to <chuky> and the document is
serialised as Canonical XML again, which reproduces the content bytes exactly.

Why the signature is built here, not by signxml: the profile is one fixed shape, and signxml's
general XAdESSigner spent most of a signature's XML time on generality we do not use (a copy of
the whole document by serialising and re-parsing it, a second parse of every referenced element,
an XPath search of the document per reference, the assembly element by element through
overridable hooks): 2.5-3 ms a signature before the key was used, about 0.6-0.8 ms now
(bench/signing.py). The builder below fills in a template of the very elements signxml wrote,
parses it with lxml, digests each reference as the exclusive C14N of the element it names (what
its transform declares), and hands the exclusive C14N of SignedInfo to `key.sign` with the call
signxml made (RSA: PKCS#1 v1.5 and SHA-256; ECDSA: ECDSA(SHA-256), the DER answer turned into
r‖s), so keys held elsewhere (PKCS#11, CSC: signing.backends.DigestSigner) sign as before. The
certificates' part of a signature is prepared once per signer (cached by fingerprint). signxml
remains the engine of the verifier (signing.verify), and tests/signing/test_profile_fast.py
keeps a copy of the signxml-based signer and pins this builder's output to its bytes.

The input is still parsed and validated against the XSD (year_record_load), as untrusted bytes:
it is a safety check, so it stays; it is now most of the XML work left.

The text path (issue 15, signing.profile_text): a document already in Canonical XML (what the
portal stores: the check is one serialisation of the input, compared with it) gets its signature
written as canonical text and spliced in before </chuky>, the content's exclusive C14N taken from
its bytes when they say it all. That spares parsing the template, three C14N passes over the new
signature and re-serialising the whole signed document: the XML work of a signature fell from
about 1.4× to about 1× the RSA-2048 key operation (docs/benchmarks.md). Anything else (a
non-canonical input, other namespaces, the seal's XAdES-LT data added to every signature) takes
the tree path above; both write the same bytes (tests/signing/test_profile_fast.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from transcripts.choices import SIGNING_ORDER, SignatureStep
from transcripts.document import NAMESPACE, DocumentError, year_record_load

from . import profile_text as text

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

# The signing order: transcripts.choices.SignatureStep, the one list of the steps.
HOMEROOM_TEACHER = SignatureStep.HOMEROOM_TEACHER.value
PRINCIPAL = SignatureStep.PRINCIPAL.value  # the principal, or a vice-principal on the principal's behalf
SEAL = SignatureStep.SEAL.value
ROLES: tuple[str, ...] = tuple(step.value for step in SIGNING_ORDER)

SIGNATURE_ID = re.compile(r"^(?P<content>.+)-sig-(?P<n>[1-9][0-9]*)-(?P<role>[a-z_]+)$")

# The XAdES DataObjectFormat of the content reference.
DATA_OBJECT_DESCRIPTION = "Học bạ số: hồ sơ một năm học (urn:hocbaso:year-record:1.0)"
DATA_OBJECT_MIME_TYPE = "text/xml"


class SigningError(Exception):
    """The document cannot be signed as asked; `code` says why, the message says it in words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def signature_id(content_id: str, n: int, role: str) -> str:
    return f"{content_id}-sig-{n}-{role}"


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _signature_method(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey) or getattr(key, "algorithm", None) == "rsa":
        if key.key_size < 2048:
            raise SigningError("weak_key", "RSA keys must have at least 2048 bits")
        return RSA_SHA256
    if isinstance(key, ec.EllipticCurvePrivateKey) or getattr(key, "algorithm", None) == "ec":
        if key.curve.name != "secp256r1":
            raise SigningError("unsupported_key", "ECDSA keys must be on P-256")
        return ECDSA_SHA256
    raise SigningError("unsupported_key", "Only RSA-2048 and ECDSA P-256 keys can sign year records")


def _child(root: etree._Element, name: str) -> etree._Element | None:
    """The first child named `name` of <hocba> (it has two: iterating beats ElementPath's find)."""
    tag = _q(name)
    for element in root:
        if element.tag == tag:
            return element
    return None


def existing_signatures(root: etree._Element) -> list[etree._Element]:
    """The ds:Signature elements of <chuky>, in document order."""
    chuky = _child(root, "chuky")
    return [] if chuky is None else [el for el in chuky if el.tag == f"{{{DS}}}Signature"]


# The certificates of a signer, as a signature carries them --------------------------------------


@dataclass(frozen=True)
class _Certificates:
    """What every signature with these certificates (signer first, then the chain) repeats, as
    XML: the ds:X509Certificate elements of X509Data (the DER in base64, in 64-character lines as
    in PEM) and the xades:Cert elements of SigningCertificateV2 (base64 SHA-256 of the DER)."""

    x509_data: str
    signing_certificate: str
    # The same for signing.profile_text: the X509Certificate elements as C14N writes them, and
    # the base64 SHA-256 of each certificate.
    x509_canonical: str
    digests: tuple[str, ...]


_CACHE_SIZE = 64  # a worker signs with a handful of keys; a bound, not an LRU
_BY_FINGERPRINT: dict[tuple[bytes, ...], _Certificates] = {}
# In front of it, the same entries by the identity of the certificate objects, which a worker
# keeps for as long as it keeps the key (signing.keys): fingerprinting costs more than the rest of
# the lookup. The entry holds the objects, so their ids cannot be reused while it exists.
_BY_OBJECT: dict[tuple[int, ...], tuple[tuple[x509.Certificate, ...], _Certificates]] = {}


def _certificate_text(cert: x509.Certificate) -> str:
    body = b64encode(cert.public_bytes(Encoding.DER)).decode()
    return "".join(f"{body[i : i + 64]}\n" for i in range(0, len(body), 64))


def _certificates(certs: tuple[x509.Certificate, ...]) -> _Certificates:
    """The signer's and the chain's elements, cached by their SHA-256 fingerprints (which are the
    SigningCertificateV2 digests too): the same certificate with another chain is another entry."""
    ids = tuple(map(id, certs))
    known = _BY_OBJECT.get(ids)
    if known is not None and all(a is b for a, b in zip(known[0], certs, strict=True)):
        return known[1]
    fingerprints = tuple(c.fingerprint(hashes.SHA256()) for c in certs)
    found = _BY_FINGERPRINT.get(fingerprints)
    if found is None:
        texts = [_certificate_text(c) for c in certs]
        found = _Certificates(
            x509_data="".join(f"<ds:X509Certificate>{t}</ds:X509Certificate>" for t in texts),
            x509_canonical="".join(f"<ds:X509Certificate>{text.text(t)}</ds:X509Certificate>" for t in texts),
            digests=tuple(b64encode(f).decode() for f in fingerprints),
            signing_certificate="".join(
                f'<xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm="{SHA256}"/>'
                f"<ds:DigestValue>{b64encode(f).decode()}</ds:DigestValue></xades:CertDigest></xades:Cert>"
                for f in fingerprints
            ),
        )
    for cache in (_BY_FINGERPRINT, _BY_OBJECT):
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
    _BY_FINGERPRINT[fingerprints] = found
    _BY_OBJECT[ids] = (certs, found)
    return found


# Building the signature --------------------------------------------------------------------------


def _exc_c14n(element: etree._Element) -> bytes:
    """Exclusive C14N 1.0 without comments: what EXC_C14N names, as signxml and xmlsec1 compute it."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def _digest_value(data: bytes) -> str:
    return b64encode(hashlib.sha256(data).digest()).decode()


def _canonical(root: etree._Element) -> bytes:
    """The whole document as Canonical XML 1.0 (comments kept), the form records are stored in."""
    return etree.tostring(root, method="c14n")


def _attr(value: str) -> str:
    """An attribute value for the template (Ids are NCNames by the schema: this is a safety net)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _reference(uri: str, digest: str, attributes: str) -> str:
    return (
        f'<ds:Reference{attributes} URI="{_attr(uri)}"><ds:Transforms><ds:Transform Algorithm="{EXC_C14N}"/>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue>{digest}</ds:DigestValue>'
        "</ds:Reference>"
    )


def _signature_template(
    *,
    sig_id: str,
    method: str,
    references: str,
    certificates: _Certificates,
    role: str,
    signing_time: str,
) -> str:
    """The ds:Signature of the profile, SignedProperties and KeyInfo digests and SignatureValue
    empty. Element for element what signxml's XAdESSigner wrote with our settings (the order of
    attributes and where namespaces are declared aside, which C14N settles); both prefixes are
    declared on ds:Signature, as signxml did, which shows in the document's Canonical XML."""
    i = _attr(sig_id)
    return (
        f'<ds:Signature xmlns:ds="{DS}" xmlns:xades="{XADES}" Id="{i}">'
        f'<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
        f'<ds:SignatureMethod Algorithm="{method}"/>{references}'
        + _reference(f"#{sig_id}-SignedProperties", "", f' Type="{SIGNED_PROPERTIES_TYPE}"')
        + _reference(f"#{sig_id}-keyinfo", "", "")
        + f'</ds:SignedInfo><ds:SignatureValue Id="{i}-value"></ds:SignatureValue>'
        f'<ds:KeyInfo Id="{i}-keyinfo"><ds:X509Data>{certificates.x509_data}</ds:X509Data></ds:KeyInfo>'
        f'<ds:Object><xades:QualifyingProperties Target="#{i}">'
        f'<xades:SignedProperties Id="{i}-SignedProperties"><xades:SignedSignatureProperties>'
        f"<xades:SigningTime>{signing_time}</xades:SigningTime>"
        f"<xades:SigningCertificateV2>{certificates.signing_certificate}</xades:SigningCertificateV2>"
        f"<xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>{role}</xades:ClaimedRole>"
        "</xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties>"
        f'<xades:SignedDataObjectProperties><xades:DataObjectFormat ObjectReference="#{i}-ref-content">'
        f"<xades:Description>{DATA_OBJECT_DESCRIPTION}</xades:Description>"
        f"<xades:MimeType>{DATA_OBJECT_MIME_TYPE}</xades:MimeType></xades:DataObjectFormat>"
        "</xades:SignedDataObjectProperties></xades:SignedProperties></xades:QualifyingProperties>"
        "</ds:Object></ds:Signature>"
    )


def _signature_values(key, method: str, data: Sequence[bytes]) -> list[bytes]:
    """The signature values of each of `data` (SignedInfo's C14N), as XML-DSig wants them.

    A key held elsewhere that can sign many digests in one call (`sign_digests`: a CSC remote
    service, signing.backends.csc) is asked once; any other key is called as signxml called it
    (RSA: PKCS#1 v1.5 and SHA-256; ECDSA: ECDSA(SHA-256), the DER answer turned into r‖s)."""
    many = getattr(key, "sign_digests", None)
    if many is not None and len(data) > 1:
        raw = many([hashlib.sha256(d).digest() for d in data])
    elif method == RSA_SHA256:
        return [key.sign(d, padding=PKCS1v15(), algorithm=hashes.SHA256()) for d in data]
    else:
        raw = [key.sign(d, signature_algorithm=ec.ECDSA(algorithm=hashes.SHA256())) for d in data]
    if method == RSA_SHA256:
        return list(raw)
    size = (key.key_size + 7) // 8
    values = []
    for der in raw:
        r, s = decode_dss_signature(der)  # XML-DSig wants r‖s, each of the key's size
        values.append(r.to_bytes(size, "big") + s.to_bytes(size, "big"))
    return values


@dataclass
class _Pending:
    """A document whose new signature is built but for its value: what sign_year_records completes.

    Built one of two ways: as an lxml tree appended to the parsed document (`signature`), or, for
    a document already in Canonical XML, as text (`text`, signing.profile_text) to be spliced into
    the input bytes at `splice_at` (before </chuky>), which spares re-serialising the document."""

    xml: bytes
    root: etree._Element
    signed_info: bytes  # the exclusive C14N the key signs
    signature: etree._Element | None = None
    text: text.SignatureText | None = None
    splice_at: int = 0
    value: str = ""
    unsigned: str = ""


_TAIL = b"</chuky></hocba>"
_CONTENT_START = b"<thongtinhocba"
_CONTENT_END = b"</thongtinhocba>"
_DEFAULT_NS = b' xmlns="%s"' % NAMESPACE.encode()


def _spliceable(xml: bytes, root: etree._Element) -> bool:
    """Whether the signature can be written as text into `xml`: the document is in Canonical XML
    (what the portal stores), with the record's namespace as its only one, <chuky> last."""
    return (
        xml.endswith(_TAIL)
        and root.prefix is None
        and root.nsmap == {None: NAMESPACE}
        and _canonical(root) == xml
    )


def _content_exc_c14n(xml: bytes, content: etree._Element) -> bytes:
    """The exclusive C14N of <thongtinhocba>, from the bytes of a document in Canonical XML when
    they say it all: the element's bytes with the default namespace declared on it (the only
    namespace in use, no comments to leave out, no declaration inside); otherwise from the tree."""
    start = xml.find(_CONTENT_START)
    end = xml.find(_CONTENT_END, start)
    if start < 0 or end < 0:
        return _exc_c14n(content)
    # In Canonical XML a raw "<" opens a tag, a comment or a processing instruction: none of the
    # last two may come before the content's end, where they could hide a "<thongtinhocba".
    after = start + len(_CONTENT_START)
    if (
        xml.find(b"<!--", 0, end) >= 0
        or xml.find(b"<?", 0, end) >= 0
        or xml.find(b"xmlns", after, end) >= 0
        or xml[after : after + 1] not in (b" ", b">")
    ):
        return _exc_c14n(content)
    return b"".join((_CONTENT_START, _DEFAULT_NS, xml[after : end + len(_CONTENT_END)]))


def _prepare(
    xml: bytes,
    *,
    cert: x509.Certificate,
    certificates: _Certificates,
    method: str,
    role: str,
    signing_time: dt.datetime,
    as_text: bool = True,
) -> _Pending:
    """Parse and check the document, build the profile's ds:Signature with every digest filled
    in and the value empty (as text when `as_text` and the document allows it, else as a tree
    appended to <chuky>). Raises SigningError or DocumentError."""
    root = year_record_load(xml)  # parsed once; validated against the XSD, as untrusted input
    earlier = existing_signatures(root)
    n = len(earlier) + 1
    if n > len(ROLES):
        raise SigningError("complete", "The record already carries all its signatures")
    if role != ROLES[n - 1]:
        expected = ROLES[n - 1]
        raise SigningError("wrong_order", f"Signature {n} must be the {expected}'s, not the {role}'s")
    content, chuky = _child(root, "thongtinhocba"), _child(root, "chuky")
    if content is None or chuky is None:  # the schema requires both: a guard
        raise DocumentError("invalid", "A year record has its content and <chuky>")
    content_id = content.get("Id")
    values = []
    for i, element in enumerate(earlier, start=1):
        sig_id = element.get("Id") or ""
        match = SIGNATURE_ID.match(sig_id)
        if not match or match["content"] != content_id or int(match["n"]) != i:
            raise SigningError("malformed", f"Earlier signature {i} is not one of this profile ({sig_id!r})")
        value = element.find(f"{{{DS}}}SignatureValue")
        if value is None or value.get("Id") != f"{sig_id}-value":
            raise SigningError("malformed", f"Earlier signature {i} has no SignatureValue of this profile")
        values.append(value)
    _check_ids_unique(chuky, content_id, [v.get("Id") for v in values])
    sig_id = signature_id(content_id, n, role)
    when = signing_time.astimezone(dt.UTC).isoformat(timespec="seconds")
    if as_text and _spliceable(xml, root):
        return _prepare_text(xml, root, content, values, sig_id, method, certificates, role, when)
    targets = [content, *values]
    references = "".join(
        _reference(
            f"#{target.get('Id')}",
            _digest_value(_exc_c14n(target)),
            f' Id="{_attr(sig_id)}-ref-{"content" if i == 0 else i}"',
        )
        for i, target in enumerate(targets)
    )
    template = _signature_template(
        sig_id=sig_id,
        method=method,
        references=references,
        certificates=certificates,
        role=role,
        signing_time=when,
    )
    signature = etree.fromstring(template.encode())  # UTF-8 bytes parse faster than a str
    chuky.append(signature)
    signed_info, _value, key_info, ds_object = signature
    signed_properties = ds_object[0][0]
    for reference, target in zip(signed_info[-2:], (signed_properties, key_info), strict=True):
        reference[2].text = _digest_value(_exc_c14n(target))  # Transforms, DigestMethod, DigestValue
    return _Pending(xml=xml, root=root, signature=signature, signed_info=_exc_c14n(signed_info))


def _prepare_text(xml, root, content, values, sig_id, method, certificates, role, when) -> _Pending:
    """_prepare's fast path: the signature as canonical text (signing.profile_text)."""
    references = text.content_reference(
        sig_id, None, f"#{content.get('Id')}", _digest_value(_content_exc_c14n(xml, content))
    ) + "".join(
        text.content_reference(sig_id, i, f"#{v.get('Id')}", _digest_value(_exc_c14n(v)))
        for i, v in enumerate(values, start=1)
    )
    about = dict(
        sig_id=sig_id,
        signing_time=when,
        cert_digests=certificates.digests,
        role=role,
        description=DATA_OBJECT_DESCRIPTION,
        mime=DATA_OBJECT_MIME_TYPE,
    )
    properties = text.signed_properties(**about, ns=True)
    keys = text.key_info(sig_id=sig_id, body=certificates.x509_canonical, ns=True)
    info = text.signed_info(
        method=method,
        references=references,
        sig_id=sig_id,
        properties=_digest_value(properties.encode()),
        key_info=_digest_value(keys.encode()),
        ns=True,
    )
    written = text.SignatureText(
        sig_id=sig_id,
        signed_info=text.without_declarations(info),
        key_info=text.without_declarations(keys),
        properties=text.without_declarations(properties),
    )
    return _Pending(
        xml=xml,
        root=root,
        signed_info=info.encode(),
        text=written,
        splice_at=len(xml) - len(_TAIL),
    )


def _check_ids_unique(chuky: etree._Element, content_id: str, earlier_ids: Sequence[str]) -> None:
    """Each referenced Id names one element of the document, as a verifier resolves it (signxml:
    any attribute named Id). The schema validates everything outside <chuky> strictly, where the
    content's is the only Id, but lets any ds:* element into <chuky> unchecked: a second element
    there with a referenced Id would make a signature cover one thing and a reader find another.
    (signxml, given one, digested the whole document under the content's URI or failed.)"""
    counts = dict.fromkeys(earlier_ids, 0)
    counts[content_id] = 1  # the content element itself
    for value in chuky.xpath(".//@*[local-name()='Id']", smart_strings=False) if len(chuky) else ():
        if value in counts:
            counts[value] += 1
    wrong = sorted(value for value, count in counts.items() if count != 1)
    if wrong:
        raise SigningError("malformed", f"Ids the signature refers to must each name one element: {wrong}")


def unsigned_signature_properties(signature: etree._Element) -> etree._Element:
    """The signature's xades:UnsignedSignatureProperties, created (after SignedProperties) if absent."""
    qualifying = signature.find(f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties")
    if qualifying is None:
        raise SigningError("malformed", "The signature has no XAdES QualifyingProperties")
    unsigned = qualifying.find(f"{{{XADES}}}UnsignedProperties")
    if unsigned is None:
        unsigned = etree.SubElement(qualifying, f"{{{XADES}}}UnsignedProperties")
    properties = unsigned.find(f"{{{XADES}}}UnsignedSignatureProperties")
    if properties is None:
        properties = etree.SubElement(unsigned, f"{{{XADES}}}UnsignedSignatureProperties")
    return properties


def timestamp_input(signature: etree._Element) -> bytes:
    """What a SignatureTimeStamp is over (EN 319 132-1 5.3): ds:SignatureValue, exclusive C14N."""
    value = signature.find(f"{{{DS}}}SignatureValue")
    if value is None:
        raise SigningError("malformed", "The signature has no SignatureValue")
    return _exc_c14n(value)


def _timestamp_input(p: _Pending) -> bytes:
    if p.text is not None:
        return text.signature_value(sig_id=p.text.sig_id, value=p.value, ns=True).encode()
    return timestamp_input(p.signature)


def _add_signature_timestamp(signature: etree._Element, token: bytes) -> None:
    properties = unsigned_signature_properties(signature)
    stamp = etree.SubElement(
        properties, f"{{{XADES}}}SignatureTimeStamp", Id=f"{signature.get('Id')}-timestamp"
    )
    etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = b64encode(token).decode()


def sign_year_records(
    documents: Sequence[bytes],
    *,
    key,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    role: str,
    signing_time: dt.datetime | None = None,
    timestamper=None,
    validation_data=None,
) -> list[bytes | SigningError | DocumentError]:
    """Each document with one more XAdES signature appended to <chuky>, as Canonical XML bytes;
    in place of a document that cannot be signed, the SigningError or DocumentError saying why.

    The signatures are made together: every document is prepared, then the key signs all the
    SignedInfos (one call to a remote service that signs many digests), then `timestamper`
    (signing.timestamps.Timestamper, when a TSA is configured) stamps every SignatureValue, then,
    with `validation_data` (signing.longterm.ValidationData; the seal's step), every signature of
    each document gets its certificates and CRLs (XAdES-LT). A failure of the key or the TSA
    (signing.backends.BackendError) is raised: it concerns every document alike.

    `role` must be the next one in ROLES (homeroom teacher, then principal, then the seal).
    Certificates are not judged here: whether this signer may sign (registered certificate,
    validity, revocation, role in the school) is checked by the caller before signing, with
    `signing.verify.certificate_problems`.
    """
    method = _signature_method(key)
    certificates = _certificates((cert, *chain))
    when = signing_time or dt.datetime.now(dt.UTC)
    results: list[bytes | SigningError | DocumentError] = []
    pending: list[tuple[int, _Pending]] = []
    for i, xml in enumerate(documents):
        try:
            pending.append(
                (
                    i,
                    _prepare(
                        xml,
                        cert=cert,
                        certificates=certificates,
                        method=method,
                        role=role,
                        signing_time=when,
                        as_text=validation_data is None,  # XAdES-LT adds to every signature: the tree
                    ),
                )
            )
            results.append(b"")
        except (SigningError, DocumentError) as error:
            results.append(error)
    if not pending:
        return results
    values = _signature_values(key, method, [p.signed_info for _i, p in pending])
    for (_i, p), value in zip(pending, values, strict=True):
        p.value = b64encode(value).decode()
        if p.signature is not None:
            p.signature[1].text = p.value
    if timestamper is not None:
        tokens = timestamper.stamp_many([_timestamp_input(p) for _i, p in pending])
        for (_i, p), token in zip(pending, tokens, strict=True):
            if p.text is not None:
                p.unsigned = text.timestamp(sig_id=p.text.sig_id, token=b64encode(token).decode())
            else:
                _add_signature_timestamp(p.signature, token)
    for i, p in pending:
        if p.text is not None:  # the content bytes are the input's: nothing to guard
            at = p.splice_at
            results[i] = p.xml[:at] + p.text.canonical(p.value, p.unsigned).encode() + p.xml[at:]
            continue
        if validation_data is not None:
            from .longterm import add_validation_data

            add_validation_data(p.root, validation_data)
        signed = _canonical(p.root)
        if content_bytes(signed) != content_bytes(p.xml):  # a guard: this must never happen
            results[i] = DocumentError("invalid", "Signing changed the content bytes")
        else:
            results[i] = signed
    return results


def sign_year_record(
    xml: bytes,
    *,
    key,
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    role: str,
    signing_time: dt.datetime | None = None,
    timestamper=None,
    validation_data=None,
) -> bytes:
    """One document signed (sign_year_records for one); raises SigningError or DocumentError."""
    (result,) = sign_year_records(
        [xml],
        key=key,
        cert=cert,
        chain=chain,
        role=role,
        signing_time=signing_time,
        timestamper=timestamper,
        validation_data=validation_data,
    )
    if isinstance(result, Exception):
        raise result
    return result


def content_bytes(xml: bytes) -> bytes:
    """The bytes of the <thongtinhocba> element as they appear in the document."""
    start = xml.index(b"<thongtinhocba")
    end = xml.index(b"</thongtinhocba>", start) + len(b"</thongtinhocba>")
    return xml[start:end]
