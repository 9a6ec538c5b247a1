"""The visible signature marks of the year record PDF, read from the XAdES signatures of its XML.

Vietnamese e-documents show, in each signer's block, who signed and when: "Ký bởi: <name>",
their title, "Thời gian ký: <dd/mm/yyyy HH:MM:SS>" (Vietnam time). The homeroom teacher's and the
principal's marks are drawn by the form's template from their signatures in the sealed XML (the
seal's is the stamp of its PAdES signature, signing.pades). The facts are read here with lxml,
not through signing (transcripts sits below signing): the signature's role from its Id
("<content Id>-sig-<n>-<role>", signing.profile), the name (CN) and title (T) from the signer's
certificate (the first ds:X509Certificate), the time from the signature's timestamp token
(xades:SignatureTimeStamp, its TSTInfo genTime) when it has one, else xades:SigningTime.

A mark says what the signature claims; whether the signature holds is the verifier's job
(signing.verify, the verification page), as on paper.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
SIGNATURE_ID = re.compile(r"-sig-(?P<n>[1-9][0-9]*)-(?P<role>[a-z_]+)$")
LOCAL_TIME = ZoneInfo("Asia/Ho_Chi_Minh")
TIME_FORMAT = "%d/%m/%Y %H:%M:%S"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class SignatureMark:
    """What one signer's block shows."""

    role: str
    name: str
    title: str
    time: dt.datetime | None
    timestamped: bool  # the time is a TSA's (RFC 3161), not the signer's own claim

    @property
    def time_text(self) -> str:
        return self.time.astimezone(LOCAL_TIME).strftime(TIME_FORMAT) if self.time is not None else ""


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _token_time(encoded: str) -> dt.datetime | None:
    try:
        token = cms.ContentInfo.load(base64.b64decode("".join(encoded.split())))
        content = token["content"]["encap_content_info"]["content"].parsed
        if not isinstance(content, tsp.TSTInfo):
            return None
        return content["gen_time"].native
    except (ValueError, TypeError, KeyError):
        return None


def _signing_time(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def signature_marks(xml: bytes) -> dict[str, SignatureMark]:
    """{role: its mark} for every signature of the document that names its role and signer
    (an unsigned document has none; a signature that cannot be read is left out)."""
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError:
        return {}
    marks: dict[str, SignatureMark] = {}
    for signature in root.iter(f"{{{DS}}}Signature"):
        found = SIGNATURE_ID.search(signature.get("Id", ""))
        certificate = signature.find(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
        if found is None or certificate is None or not certificate.text:
            continue
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode("".join(certificate.text.split())))
        except ValueError:
            continue
        time, timestamped = None, False
        stamp = signature.find(f".//{{{XADES}}}SignatureTimeStamp/{{{XADES}}}EncapsulatedTimeStamp")
        if stamp is not None and stamp.text:
            time = _token_time(stamp.text)
            timestamped = time is not None
        if time is None:
            claimed = signature.find(f".//{{{XADES}}}SigningTime")
            time = _signing_time(claimed.text) if claimed is not None and claimed.text else None
        role = found.group("role")
        marks[role] = SignatureMark(
            role=role,
            name=_attribute(cert.subject, NameOID.COMMON_NAME),
            title=(
                _attribute(cert.subject, NameOID.TITLE) or _attribute(cert.subject, NameOID.ORGANIZATION_NAME)
            ),
            time=time,
            timestamped=timestamped,
        )
    return marks
