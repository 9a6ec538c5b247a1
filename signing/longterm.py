"""Keeping signatures verifiable for a lifetime: XAdES-LT validation data and XAdES-LTA archive
timestamps (ETSI EN 319 132-1), added to the unsigned properties of every signature.

- **LT, at issue** (`add_validation_data`, called by signing.profile for the seal's step): each
  signature gets `xades:CertificateValues` (every certificate of its chain and of its timestamp's
  chain that its KeyInfo and the token do not already carry, the roots included) and
  `xades:RevocationValues/xades:CRLValues` (the CRLs of every CA in those chains, as the portal has
  them at that moment). The record then verifies with no network: a verifier still pins its own
  roots (signing.verify never takes a trust anchor from the document), but needs nothing else.
- **LTA, later** (`add_archive_timestamps`, `manage.py archive_timestamp`): before the certificate
  of the newest timestamp expires (or its algorithm weakens), each signature gets
  `xadesv141:TimeStampValidationData` (the CRLs and certificates that validate its timestamps as
  of now) and then `xadesv141:ArchiveTimeStamp`, an RFC 3161 token over everything the signature
  is (`archive_timestamp_input`). Its time proves that the earlier timestamps and data existed
  while their certificates were still valid; repeat with each new TSA certificate.

Only unsigned properties change: later signatures cover an earlier one's SignatureValue (not the
whole element), so every signature still verifies (signing.profile).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from . import trust
from .profile import (
    DS,
    EXC_C14N,
    XADES,
    SigningError,
    existing_signatures,
    unsigned_signature_properties,
)

XADES141 = "http://uri.etsi.org/01903/v1.4.1#"


@dataclass(frozen=True)
class ValidationData:
    """What may be needed to validate signatures offline: CA certificates (roots included) and CRLs."""

    certificates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]


def validation_data_current() -> ValidationData:
    """The portal's roots (signers' and TSAs') and its CRLs as of now (re-read, not cached)."""
    return ValidationData(
        certificates=(*trust.trust_roots(), *trust.tsa_roots()),
        crls=tuple(trust.crls(fresh=True)),
    )


def signing_extras(role: str) -> dict:
    """What every signature the portal makes gets besides the key, as keyword arguments of
    signing.profile.sign_year_records: the configured TSA's timestamp (XAdES-T) and, at the seal,
    which issues the record, the validation data of all its signatures (XAdES-LT, which builds on
    the timestamps: without a TSA there is none)."""
    from .profile import SEAL
    from .timestamps import timestamper

    stamper = timestamper()
    data = validation_data_current() if role == SEAL and stamper is not None else None
    return {"timestamper": stamper, "validation_data": data}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def signature_certificates(signature: etree._Element) -> list[x509.Certificate]:
    """The certificates the signature's KeyInfo carries (signer first)."""
    found = []
    for element in signature.findall(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"):
        found.append(x509.load_der_x509_certificate(base64.b64decode("".join((element.text or "").split()))))
    return found


def timestamp_tokens(signature: etree._Element, kind: str = "SignatureTimeStamp") -> list[bytes]:
    """The DER tokens of the signature's SignatureTimeStamp (or, kind="ArchiveTimeStamp", its
    archive timestamps), in document order."""
    namespace = XADES if kind == "SignatureTimeStamp" else XADES141
    path = (
        f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}UnsignedProperties/"
        f"{{{XADES}}}UnsignedSignatureProperties/{{{namespace}}}{kind}/{{{XADES}}}EncapsulatedTimeStamp"
    )
    return [base64.b64decode("".join((e.text or "").split())) for e in signature.findall(path)]


def embedded_values(
    signature: etree._Element,
) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    """Every certificate and CRL the signature's unsigned properties carry (LT and LTA data)."""
    certs: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    properties = signature.find(
        f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}UnsignedProperties/"
        f"{{{XADES}}}UnsignedSignatureProperties"
    )
    if properties is None:
        return certs, crls
    for element in properties.iter(f"{{{XADES}}}EncapsulatedX509Certificate"):
        certs.append(x509.load_der_x509_certificate(base64.b64decode("".join((element.text or "").split()))))
    for element in properties.iter(f"{{{XADES}}}EncapsulatedCRLValue"):
        crls.append(x509.load_der_x509_crl(base64.b64decode("".join((element.text or "").split()))))
    return certs, crls


def _token_certificates(tokens: Iterable[bytes]) -> list[x509.Certificate]:
    from .timestamps import token_read

    found: list[x509.Certificate] = []
    for token in tokens:
        found.extend(token_read(token).certificates)
    return found


def _chains(start: Iterable[x509.Certificate], pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """`start` and every issuer above them found in `pool` or `start` by name (roots included)."""
    known = list(dict.fromkeys([*start, *pool]))
    result: list[x509.Certificate] = []
    todo = list(start)
    while todo:
        cert = todo.pop()
        if cert in result:
            continue
        result.append(cert)
        if cert.issuer == cert.subject:
            continue
        todo.extend(c for c in known if c.subject == cert.issuer and c not in result)
    return result


def _values_elements(
    parent: etree._Element,
    certs: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
) -> None:
    if certs:
        values = etree.SubElement(parent, f"{{{XADES}}}CertificateValues")
        for cert in certs:
            etree.SubElement(values, f"{{{XADES}}}EncapsulatedX509Certificate").text = _b64(_der(cert))
    if crls:
        revocation = etree.SubElement(parent, f"{{{XADES}}}RevocationValues")
        crl_values = etree.SubElement(revocation, f"{{{XADES}}}CRLValues")
        for crl in crls:
            etree.SubElement(crl_values, f"{{{XADES}}}EncapsulatedCRLValue").text = _b64(
                crl.public_bytes(Encoding.DER)
            )


def _needed(
    signature: etree._Element, tokens: Sequence[bytes], data: ValidationData
) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    """The certificates (not already in the signature's KeyInfo or in the tokens) and CRLs that
    validate the signature's chain and the tokens' chains."""
    own = signature_certificates(signature)
    carried = _token_certificates(tokens)
    already, _ = embedded_values(signature)
    chain = _chains([*own, *carried], [*data.certificates, *already])
    issuers = {c.subject for c in chain}
    crls = [crl for crl in data.crls if crl.issuer in issuers]
    present = {_der(c) for c in (*own, *carried, *already)}
    certs = [c for c in chain if _der(c) not in present]
    return certs, crls


def add_signature_validation_data(signature: etree._Element, data: ValidationData) -> bool:
    """Add CertificateValues and RevocationValues to one signature (XAdES-LT); False when it has
    them already (validation data is added once, at issue)."""
    properties = unsigned_signature_properties(signature)
    if properties.find(f"{{{XADES}}}CertificateValues") is not None:
        return False
    certs, crls = _needed(signature, timestamp_tokens(signature), data)
    _values_elements(properties, certs, crls)
    return True


def add_validation_data(root: etree._Element, data: ValidationData) -> None:
    """XAdES-LT for every signature of the document (the seal's step, at issue)."""
    for signature in existing_signatures(root):
        add_signature_validation_data(signature, data)


# --- Archive timestamps (XAdES-LTA) --------------------------------------------------------------


def _exc_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def archive_timestamp_input(signature: etree._Element, *, before: etree._Element | None = None) -> bytes:
    """What an ArchiveTimeStamp is over (EN 319 132-1 5.5.2, the case of references by Id with the
    exclusive C14N transform only, which is this profile's): the referenced elements, each as its
    reference transforms it (exclusive C14N); ds:SignedInfo, ds:SignatureValue, ds:KeyInfo; every
    unsigned signature property in document order up to `before` (the archive timestamp being
    checked; None: all, for a new one); each ds:Object but the one holding the qualifying
    properties. Everything in exclusive C14N, concatenated."""
    root = signature.getroottree().getroot()
    parts: list[bytes] = []
    signed_info = signature.find(f"{{{DS}}}SignedInfo")
    if signed_info is None:
        raise SigningError("malformed", "The signature has no SignedInfo")
    for reference in signed_info.findall(f"{{{DS}}}Reference"):
        uri = reference.get("URI") or ""
        if not uri.startswith("#"):
            raise SigningError("malformed", f"Reference {uri!r} is not by Id")
        found = root.xpath("//*[@Id=$i]", i=uri[1:])
        if len(found) != 1:
            raise SigningError("malformed", f"Reference {uri!r} names {len(found)} elements")
        parts.append(_exc_c14n(found[0]))
    for name in ("SignedInfo", "SignatureValue", "KeyInfo"):
        element = signature.find(f"{{{DS}}}{name}")
        if element is not None:
            parts.append(_exc_c14n(element))
    properties = unsigned_signature_properties(signature)
    for child in properties:
        if child is before:
            break
        parts.append(_exc_c14n(child))
    for ds_object in signature.findall(f"{{{DS}}}Object"):
        if ds_object.find(f"{{{XADES}}}QualifyingProperties") is None:
            parts.append(_exc_c14n(ds_object))
    return b"".join(parts)


def proof_until(root: etree._Element) -> dt.datetime | None:
    """Until when the newest timestamp of every signature can be relied on by itself: the earliest
    end of validity of the certificates its token carries (the TSA's and its CA's), over the
    signatures. None when a signature has no timestamp (baseline B: nothing to renew)."""
    from .timestamps import token_read

    until = None
    for signature in existing_signatures(root):
        tokens = [*timestamp_tokens(signature), *timestamp_tokens(signature, "ArchiveTimeStamp")]
        if not tokens:
            return None
        info = token_read(tokens[-1])
        if info.tsa_cert is None:
            return None
        ends = [c.not_valid_after_utc for c in info.certificates] or [info.tsa_cert.not_valid_after_utc]
        end = min(ends)
        until = end if until is None else min(until, end)
    return until


def add_archive_timestamps(root: etree._Element, *, timestamper, data: ValidationData) -> int:
    """XAdES-LTA: for every signature, the validation data of its timestamps as of now
    (xadesv141:TimeStampValidationData), then an ArchiveTimeStamp over all of it. Returns the
    number of signatures stamped."""
    signatures = existing_signatures(root)
    for signature in signatures:
        properties = unsigned_signature_properties(signature)
        tokens = [*timestamp_tokens(signature), *timestamp_tokens(signature, "ArchiveTimeStamp")]
        certs, crls = _needed(signature, tokens, data)
        # Always the CRLs as of now (newer than the ones embedded at issue), and the certificates
        # the earlier data lacks.
        validation = etree.SubElement(properties, f"{{{XADES141}}}TimeStampValidationData")
        _values_elements(validation, certs, crls)
        if not len(validation):
            properties.remove(validation)
    inputs = [archive_timestamp_input(signature) for signature in signatures]
    tokens = timestamper.stamp_many(inputs)
    for signature, token in zip(signatures, tokens, strict=True):
        properties = unsigned_signature_properties(signature)
        count = len(timestamp_tokens(signature, "ArchiveTimeStamp"))
        stamp = etree.SubElement(
            properties, f"{{{XADES141}}}ArchiveTimeStamp", Id=f"{signature.get('Id')}-archive-{count + 1}"
        )
        etree.SubElement(stamp, f"{{{DS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
        etree.SubElement(stamp, f"{{{XADES}}}EncapsulatedTimeStamp").text = _b64(token)
    return len(signatures)
