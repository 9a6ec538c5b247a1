"""What an archive check answers (findings by file) and the limits it reads a ZIP under."""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from transcripts.document import MAX_DOCUMENT_BYTES

from ..archive import (
    KIND_CRL,
    KIND_PDF,
    KIND_README,
    KIND_RENEWAL,
    KIND_ROOT,
    KIND_TIMESTAMP,
    KIND_TSA_ROOT,
    KIND_XML,
    MANIFEST,
    MANIFEST_DIGEST,
)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# What reading a damaged member raises (a bad CRC, a broken deflate stream, a header that lies).
_READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error)
MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What an archive may hold before it is refused unread (a province's year fits well within)."""

    max_entries: int = 1_500_000
    max_total_bytes: int = 200 * 1024 * MiB
    max_manifest_bytes: int = 512 * MiB
    max_ratio: int = 200  # uncompressed / compressed, for members over 1 MiB
    # Per kind of member: a year record is at most the parser's limit; a PDF well under 20 MiB.
    max_bytes: dict[str, int] = field(
        default_factory=lambda: {
            KIND_XML: MAX_DOCUMENT_BYTES,
            KIND_RENEWAL: MAX_DOCUMENT_BYTES,
            KIND_PDF: 20 * MiB,
            KIND_TIMESTAMP: 1 * MiB,
            KIND_ROOT: 1 * MiB,
            KIND_TSA_ROOT: 1 * MiB,
            KIND_CRL: 64 * MiB,
            KIND_README: 1 * MiB,
        }
    )

    def for_name(self, name: str) -> int:
        """The size allowed for a member, by what its name says it is (before the manifest is read)."""
        if name == MANIFEST:
            return self.max_manifest_bytes
        if name == MANIFEST_DIGEST:
            return 1024
        return max(self.max_bytes.values())


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one file of the archive."""

    path: str
    code: str
    message: str  # for people, in the active language (Vietnamese by default)
    detail: str = ""  # technical, English

    def line(self) -> str:
        return f"{self.path}: {self.message}" + (f" ({self.detail})" if self.detail else "")

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message, "detail": self.detail}


@dataclass
class ArchiveCheck:
    """The answer: refused (hostile or unreadable), or checked with its findings."""

    refused: bool = False
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the archive itself declares missing
    school_year: str = ""
    files_checked: int = 0
    records_checked: int = 0
    signatures_checked: int = 0
    pdfs_checked: int = 0
    pdf_signatures_checked: int = 0  # PAdES seals on the PDFs (older PDFs have none)

    @property
    def ok(self) -> bool:
        return not self.refused and not self.findings

    def add(self, path: str, code: str, message: str, detail: str = "") -> None:
        self.findings.append(Finding(path, code, message, detail))

    def merge(self, part: ArchiveCheck) -> None:
        """Add what one record's check found (made here or in a worker process)."""
        self.findings.extend(part.findings)
        self.records_checked += part.records_checked
        self.signatures_checked += part.signatures_checked
        self.pdfs_checked += part.pdfs_checked
        self.pdf_signatures_checked += part.pdf_signatures_checked

    def paths(self) -> set[str]:
        return {f.path for f in self.findings}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "refused": self.refused,
            "school_year": self.school_year,
            "files_checked": self.files_checked,
            "records_checked": self.records_checked,
            "signatures_checked": self.signatures_checked,
            "pdfs_checked": self.pdfs_checked,
            "pdf_signatures_checked": self.pdf_signatures_checked,
            "findings": [f.as_dict() for f in self.findings],
            "notes": self.notes,
        }


class _Refused(Exception):
    def __init__(self, path: str, code: str, message: str, detail: str = ""):
        super().__init__(detail or message)
        self.finding = Finding(path, code, message, detail)
