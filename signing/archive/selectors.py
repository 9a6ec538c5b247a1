"""What an archive of issued records needs from signing, behind signing's face (registry.archive).

An archive a department keeps (docs/operations.md, "Lưu trữ") carries the trust material its
records verify against (the signers' roots, the timestamping services' roots, the CRLs), and is
checked later with nothing else: never the settings' trust store, never the network. This module
hands registry the trust material as it is now (`archive_trust_material`), and runs the verifiers
against material given explicitly (`archive_record_reports`, `archive_pdf_problems`).

The verifier is growing (XAdES-T/LT: `tsa_roots=` and `now=` keyword arguments; PAdES in
signing.pades): both calls pass those arguments only when the verifier has them, so an archive
made today is checked by whatever the verifier can check on the day it is checked.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib
import importlib.util
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from django.conf import settings

from .. import trust
from ..choices import Problem, ProblemCode
from ..verify import SignatureReport, all_valid, verify_year_record

__all__ = [
    "ArchiveTrust",
    "SignatureReport",
    "all_valid",
    "archive_pdf_problems",
    "archive_record_reports",
    "archive_trust_material",
    "pades_available",
]


@dataclass(frozen=True)
class ArchiveTrust:
    """Trust material as bytes, to be written into an archive (PEM certificates, DER CRLs)."""

    roots: tuple[bytes, ...]  # the signers' roots, one PEM certificate each
    tsa_roots: tuple[bytes, ...]  # the timestamping services' roots, one PEM certificate each
    crls: tuple[bytes, ...]  # DER


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _tsa_roots() -> tuple[x509.Certificate, ...]:
    files = getattr(settings, "HOCBA_TSA_TRUST_ROOTS", ()) or ()
    if isinstance(files, (str, Path)):
        files = [files]
    certs: list[x509.Certificate] = []
    for file in files:
        if str(file).strip():
            certs.extend(x509.load_pem_x509_certificates(Path(file).read_bytes()))
    return tuple(certs)


def archive_trust_material() -> ArchiveTrust:
    """The pinned roots, the TSA roots (HOCBA_TSA_TRUST_ROOTS, when set) and the CRLs, read fresh."""
    roots = trust.trust_roots()
    tsa = [c for c in _tsa_roots() if c not in roots]
    unique_crls = {
        hashlib.sha256(der).hexdigest(): der
        for der in (crl.public_bytes(Encoding.DER) for crl in trust.crls(fresh=True))
    }
    return ArchiveTrust(
        roots=tuple(_pem(c) for c in roots),
        tsa_roots=tuple(_pem(c) for c in tsa),
        crls=tuple(unique_crls.values()),
    )


@functools.cache
def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


def archive_record_reports(
    xml: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    tsa_roots: Sequence[x509.Certificate] = (),
    at: dt.datetime | None = None,
) -> list[SignatureReport]:
    """signing.verify's reports on one year record, against exactly this trust material.

    `tsa_roots` and `at` (the moment the checks are made for: the archive's creation) go to the
    verifier when it takes them (XAdES-T/LT); a baseline-B verifier checks what it can without.
    """
    kwargs: dict[str, object] = {}
    if _accepts(verify_year_record, "tsa_roots"):
        kwargs["tsa_roots"] = list(tsa_roots)
    if at is not None and _accepts(verify_year_record, "now"):
        kwargs["now"] = at
    return verify_year_record(xml, trust_roots=list(trust_roots), crls=list(crls), **kwargs)


def pades_available() -> bool:
    """Whether this portal seals its PDFs as PDFs (signing.pades)."""
    return importlib.util.find_spec("signing.pades") is not None


def archive_pdf_problems(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    crls: Sequence[x509.CertificateRevocationList],
    tsa_roots: Sequence[x509.Certificate] = (),
) -> list[Problem] | None:
    """The problems of the PDF's own signature (PAdES), or None when this portal has no PAdES
    verifier. The report's shape is signing.pades's: its `problems` (a sequence of Problem) is
    read, or the report itself if it is one."""
    if not pades_available():
        return None
    pades = importlib.import_module("signing.pades")
    try:
        report = pades.pdf_signature_report(
            pdf, trust_roots=list(trust_roots), tsa_roots=list(tsa_roots), crls=list(crls)
        )
    except Exception as error:  # a hostile file gives a reason, never a crash
        return [Problem(ProblemCode.UNCHECKABLE, f"The PDF's signature cannot be checked: {error}")]
    problems = getattr(report, "problems", report)
    if isinstance(problems, (list, tuple)):
        return [p for p in problems if isinstance(p, Problem)]
    return [Problem(ProblemCode.UNCHECKABLE, f"Unexpected PDF signature report: {type(report).__name__}")]
