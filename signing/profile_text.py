"""The profile's ds:Signature written directly as canonical text: the fast path of signing.profile.

signing.profile builds a signature by filling a template, parsing it with lxml, computing the
exclusive C14N of SignedProperties, KeyInfo and SignedInfo from the tree, and finally serialising
the whole document as Canonical XML again. For a document that is already in Canonical XML (what
the portal stores and hands to the signer) every one of those serialisations is known in advance:
the signature is text we write, in a fixed shape, with values that are base64, Ids (NCNames), the
algorithm URIs, the signing time and the role. This module writes:

- the exclusive C14N of SignedProperties, KeyInfo and SignedInfo (what is digested and signed):
  namespace declarations where exclusive C14N puts them (on the apex element, and on each ds:
  element under xades:SignedProperties, which does not use ds itself), attributes in C14N order,
  no empty-element tags;
- the ds:Signature as inclusive Canonical XML renders it inside the document (both prefixes
  declared on ds:Signature, none below it), which is spliced in before </chuky>.

The output is byte for byte what the tree path produces (tests/signing/test_profile_fast.py pins
both paths to the signxml-based reference, and to each other); what is not in this shape
(non-canonical input, namespaces other than the record's default one, the long-term validation
data added at the seal) takes the tree path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

_NS_DS = f' xmlns:ds="{DS}"'
_NS_XADES = f' xmlns:xades="{XADES}"'


_ATTRIBUTE_SPECIAL = re.compile(r'[&<"\t\n\r]')
_TEXT_SPECIAL = re.compile(r"[&<>\r]")


def attribute(value: str) -> str:
    """An attribute value as C14N writes it."""
    if _ATTRIBUTE_SPECIAL.search(value) is None:  # Ids and URIs, as a rule
        return value
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace('"', "&quot;")
        .replace("\t", "&#x9;")
        .replace("\n", "&#xA;")
        .replace("\r", "&#xD;")
    )


def text(value: str) -> str:
    """Character content as C14N writes it."""
    if _TEXT_SPECIAL.search(value) is None:
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")


def _reference(attributes: str, uri: str, digest: str) -> str:
    return (
        f'<ds:Reference{attributes} URI="{attribute(uri)}"><ds:Transforms>'
        f'<ds:Transform Algorithm="{EXC_C14N}"></ds:Transform></ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod>'
        f"<ds:DigestValue>{digest}</ds:DigestValue></ds:Reference>"
    )


def content_reference(sig_id: str, n: int | None, uri: str, digest: str) -> str:
    """A Reference to the content (n None) or to earlier SignatureValue n: Id sorts before URI."""
    which = "content" if n is None else str(n)
    return _reference(f' Id="{attribute(sig_id)}-ref-{which}"', uri, digest)


def signed_info(
    *, method: str, references: str, sig_id: str, properties: str, key_info: str, ns: bool
) -> str:
    """ds:SignedInfo: exclusive C14N with `ns` (what is signed), as inside ds:Signature without."""
    return (
        f"<ds:SignedInfo{_NS_DS if ns else ''}>"
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>'
        f'<ds:SignatureMethod Algorithm="{method}"></ds:SignatureMethod>{references}'
        + _reference(f' Type="{SIGNED_PROPERTIES_TYPE}"', f"#{sig_id}-SignedProperties", properties)
        + _reference("", f"#{sig_id}-keyinfo", key_info)
        + "</ds:SignedInfo>"
    )


def key_info(*, sig_id: str, body: str, ns: bool) -> str:
    """ds:KeyInfo around `body`, the ds:X509Certificate elements as C14N writes them."""
    return (
        f'<ds:KeyInfo{_NS_DS if ns else ""} Id="{attribute(sig_id)}-keyinfo"><ds:X509Data>{body}'
        "</ds:X509Data></ds:KeyInfo>"
    )


def signed_properties(
    *,
    sig_id: str,
    signing_time: str,
    cert_digests: tuple[str, ...],
    role: str,
    description: str,
    mime: str,
    ns: bool,
) -> str:
    """xades:SignedProperties. In its exclusive C14N (`ns`) xades is declared on the apex and ds on
    each ds: element (the apex does not use ds); inside ds:Signature both are already declared."""
    ds = _NS_DS if ns else ""
    certs = "".join(
        f'<xades:Cert><xades:CertDigest><ds:DigestMethod{ds} Algorithm="{SHA256}"></ds:DigestMethod>'
        f"<ds:DigestValue{ds}>{d}</ds:DigestValue></xades:CertDigest></xades:Cert>"
        for d in cert_digests
    )
    i = attribute(sig_id)
    return (
        f'<xades:SignedProperties{_NS_XADES if ns else ""} Id="{i}-SignedProperties">'
        f"<xades:SignedSignatureProperties><xades:SigningTime>{text(signing_time)}</xades:SigningTime>"
        f"<xades:SigningCertificateV2>{certs}</xades:SigningCertificateV2>"
        f"<xades:SignerRole><xades:ClaimedRoles><xades:ClaimedRole>{text(role)}</xades:ClaimedRole>"
        "</xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties>"
        f'<xades:SignedDataObjectProperties><xades:DataObjectFormat ObjectReference="#{i}-ref-content">'
        f"<xades:Description>{text(description)}</xades:Description>"
        f"<xades:MimeType>{text(mime)}</xades:MimeType></xades:DataObjectFormat>"
        "</xades:SignedDataObjectProperties></xades:SignedProperties>"
    )


def without_declarations(exclusive: str) -> str:
    """An element written here in its exclusive C14N, as it is inside ds:Signature (which declares
    both prefixes): the same text without the declarations (no value here contains them)."""
    return exclusive.replace(_NS_DS, "").replace(_NS_XADES, "")


def signature_value(*, sig_id: str, value: str, ns: bool) -> str:
    """ds:SignatureValue (with `ns`: its exclusive C14N, what a SignatureTimeStamp is over)."""
    return (
        f'<ds:SignatureValue{_NS_DS if ns else ""} Id="{attribute(sig_id)}-value">{value}</ds:SignatureValue>'
    )


def timestamp(*, sig_id: str, token: str) -> str:
    """The UnsignedProperties of a signature with its SignatureTimeStamp, inside ds:Signature."""
    return (
        "<xades:UnsignedProperties><xades:UnsignedSignatureProperties>"
        f'<xades:SignatureTimeStamp Id="{attribute(sig_id)}-timestamp">'
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>'
        f"<xades:EncapsulatedTimeStamp>{token}</xades:EncapsulatedTimeStamp></xades:SignatureTimeStamp>"
        "</xades:UnsignedSignatureProperties></xades:UnsignedProperties>"
    )


@dataclass
class SignatureText:
    """A signature written as text but for its value (and unsigned properties)."""

    sig_id: str
    signed_info: str  # as inside ds:Signature
    key_info: str
    properties: str

    def canonical(self, value: str, unsigned: str = "") -> str:
        """The ds:Signature as the document's Canonical XML has it."""
        i = attribute(self.sig_id)
        return (
            f'<ds:Signature{_NS_DS}{_NS_XADES} Id="{i}">{self.signed_info}'
            + signature_value(sig_id=self.sig_id, value=value, ns=False)
            + f'{self.key_info}<ds:Object><xades:QualifyingProperties Target="#{i}">'
            f"{self.properties}{unsigned}</xades:QualifyingProperties></ds:Object></ds:Signature>"
        )
