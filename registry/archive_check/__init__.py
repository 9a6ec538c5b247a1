"""Checking an archive of issued records offline (registry.archive makes them): what is wrong, by file.

`archive_check(file)` opens the ZIP (nothing is extracted to disk, nothing fetched, no database
read) and answers an `ArchiveCheck`: a list of findings, each naming the file it is about, with a
message for people (translated: Vietnamese by default) and the technical detail in English.

First the ZIP as a whole, before any member is decompressed; a hostile archive is refused
(`refused`) with the reason and nothing more is read: not a ZIP; more members than
`Limits.max_entries`; a member name that is absolute, climbs out ('..'), uses a backslash or a
drive, or repeats; an encrypted member or an unknown compression; a member larger than its kind
allows, or compressed more than `Limits.max_ratio` times (a zip bomb); a total beyond
`Limits.max_total_bytes`. Reading a member is bounded by its declared size (zipfile stops
there and checks the CRC), so no member inflates past the limits checked here.

Then the manifest: present, well formed, equal to manifest.sha256 (and to `manifest_sha256`
when the keeper recorded it elsewhere). Every listed file present, with its size and SHA-256;
no member outside the list. Each year record (XML) verifies with signing's verifier against ONLY
the archive's roots and CRLs (trust/, the files whose hashes hold) at the archive's creation time
and is the version the manifest says; each PDF embeds exactly that XML (read as the public
verification page reads uploads: qpdf under limits, registry.verification.pdf_attachments) and,
when this portal seals PDFs (signing.pades), its PDF signature holds; each timestamp file is the
token its record's signature carries; a renewal (XAdES-LTA) carries the issued content byte for
byte and verifies too. A record whose XML changed is named twice: for its SHA-256 and for its
signatures. The verifying (the slow part, ~120 ms a record) can run in `jobs` forked processes;
the parent alone reads the ZIP, and the report is the same.
"""

from __future__ import annotations

import zipfile
from typing import IO

from django.utils.translation import gettext as _

from .container import _screen
from .contents import _check
from .report import ArchiveCheck, Finding, Limits, _Refused

__all__ = ["ArchiveCheck", "Finding", "Limits", "archive_check"]


def archive_check(
    file: str | IO[bytes],
    *,
    manifest_sha256: str | None = None,
    limits: Limits | None = None,
    jobs: int = 1,
) -> ArchiveCheck:
    """Check an archive file (a path or a binary file object, seekable) offline; `jobs` worker
    processes verify the records' signatures (the slow part) side by side."""
    limits = limits or Limits()
    result = ArchiveCheck()
    try:
        zf = zipfile.ZipFile(file)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
    ) as error:
        result.refused = True
        result.findings = [
            Finding(
                "-",
                "not_a_zip",
                _("The file is not a readable ZIP archive."),
                f"{type(error).__name__}: {error}",
            )
        ]
        return result
    with zf:
        try:
            members = _screen(zf, limits)
        except _Refused as refusal:
            result.refused = True
            result.findings = [refusal.finding]
            return result
        _check(zf, members, limits, result, manifest_sha256, jobs)
    return result
