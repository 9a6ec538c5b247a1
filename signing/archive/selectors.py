"""What an archive of issued records needs from signing, behind signing's face (registry.archive).

An archive a department keeps (docs/operations.md, "Lưu trữ") carries the trust material its
records verify against (the signers' roots, the timestamping services' roots, the CRLs), and is
checked later with nothing else: never the settings' trust store, never the network. This module
hands registry the trust material as it is now (`archive_trust_material`), and runs the verifiers
against material given explicitly: the XML's (signing.verify, XAdES B/T/LT, judged at the
archive's creation time) and the PDF's own seal (signing.pades, PAdES).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import trust
from ..pades import pdf_signature_report
from ..verify import SignatureReport, all_valid, verify_year_record

__all__ = [
    "ArchiveTrust",
    "SignatureReport",
    "all_valid",
    "archive_pdf_problems",
    "archive_record_reports",
    "archive_trust_material",
]


@dataclass(frozen=True)
class ArchiveTrust:
    """Trust material as bytes, to be written into an archive (PEM certificates, DER CRLs)."""

    roots: tuple[bytes, ...]  # the signers' roots, one PEM certificate each
    tsa_roots: tuple[bytes, ...]  # the timestamping services' roots, one PEM certificate each
    crls: tuple[bytes, ...]  # DER


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def archive_trust_material() -> ArchiveTrust:
    """The pinned roots, the TSA roots (HOCBA_TSA_TRUST_ROOTS, when set) and the CRLs, read fresh."""
    roots = trust.trust_roots()
    tsa = [c for c in trust.tsa_roots() if c not in roots]
    unique_crls = {
        hashlib.sha256(der).hexdigest(): der
        for der in (crl.public_bytes(Encoding.DER) for crl in trust.crls(fresh=True))
    }
    return ArchiveTrust(
        roots=tuple(_pem(c) for c in roots),
        tsa_roots=tuple(_pem(c) for c in tsa),
        crls=tuple(unique_crls.values()),
    )


def archive_record_reports(
    xml: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    tsa_roots: Sequence[x509.Certificate] = (),
    at: dt.datetime | None = None,
) -> list[SignatureReport]:
    """signing.verify's reports on one year record, against exactly this trust material, judged
    at `at` (the archive's creation: its CRLs are of that moment; None: now)."""
    return verify_year_record(
        xml, trust_roots=list(trust_roots), crls=list(crls), tsa_roots=list(tsa_roots), now=at
    )


def archive_pdf_problems(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    tsa_roots: Sequence[x509.Certificate] = (),
) -> tuple[int, list[str]]:
    """(how many signatures the PDF carries, the problems of each in English, field first), by
    signing.pades against exactly this trust material. A PDF without a signature gives (0, [])."""
    reports = pdf_signature_report(
        pdf, trust_roots=list(trust_roots), tsa_roots=list(tsa_roots), crls=list(crls)
    )
    problems = [f"{report.field or 'PDF'}: {problem}" for report in reports for problem in report.problems]
    problems += [
        f"{report.field}: the signature does not hold"
        for report in reports
        if not report.problems and not report.valid
    ]
    return sum(1 for r in reports if r.field), problems
