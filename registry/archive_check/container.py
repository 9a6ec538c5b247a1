"""The ZIP as a whole and its manifest: screened before any member is decompressed, then read
under the limits (a hostile archive is refused with the reason and nothing more is read)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zipfile
from typing import Any

from django.utils.translation import gettext as _

from ..archive import (
    FORMAT,
    KINDS,
    MANIFEST,
    MANIFEST_DIGEST,
)
from .report import _HEX64, _READ_ERRORS, ArchiveCheck, Limits, MiB, _Refused


def _unsafe_name(name: str) -> bool:
    if not name or len(name) > 512 or "\\" in name or "\x00" in name or name.startswith("/"):
        return True
    if any(ord(c) < 32 for c in name) or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part in ("", ".", "..") for part in name.split("/"))  # also a folder ("a/") and "a//b"


def _screen(zf: zipfile.ZipFile, limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """Every member's name and declared sizes, checked before anything is decompressed."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _Refused(
            "-",
            "too_many_entries",
            _("The archive holds too many files to be an archive of year records: refused unread."),
            f"{len(infos)} members, at most {limits.max_entries}",
        )
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if _unsafe_name(name) or info.is_dir():
            raise _Refused(
                name[:200] or "-",
                "unsafe_path",
                _("A file name in the archive is unsafe (absolute, '..', a drive): refused unread."),
                f"member name {name[:200]!r}",
            )
        if name in members:
            raise _Refused(
                name,
                "duplicate_path",
                _("A file appears twice in the archive: refused unread."),
                "duplicate member",
            )
        if info.flag_bits & 0x1:
            raise _Refused(name, "encrypted", _("A file in the archive is encrypted: refused unread."))
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(
                name,
                "compression",
                _("A file in the archive uses a compression this check does not read: refused unread."),
                f"compression method {info.compress_type}",
            )
        allowed = limits.for_name(name)
        if info.file_size > allowed:
            raise _Refused(
                name,
                "too_large",
                _("A file in the archive is far larger than any file of an archive: refused unread."),
                f"{info.file_size} bytes declared, at most {allowed}",
            )
        if info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise _Refused(
                name,
                "zip_bomb",
                _("A file in the archive is compressed beyond reason (a zip bomb): refused unread."),
                f"{info.file_size} bytes from {info.compress_size}",
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _Refused(
                name,
                "too_large",
                _("The archive is larger than this check reads: refused unread."),
                f"more than {limits.max_total_bytes} bytes declared in all",
            )
        members[name] = info
    return members


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes (at most its declared size, which _screen bounded); BadZipFile on a bad CRC."""
    with zf.open(info) as member:
        return member.read(min(info.file_size, limit) + 1)


def _manifest(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    limits: Limits,
    result: ArchiveCheck,
    pinned: str | None,
) -> dict[str, Any] | None:
    if MANIFEST not in members:
        result.add(MANIFEST, "missing", _("The archive has no manifest: nothing in it can be checked."))
        return None
    try:
        data = _read(zf, members[MANIFEST], limits.max_manifest_bytes)
    except _READ_ERRORS as error:
        result.add(MANIFEST, "unreadable", _("The manifest cannot be read from the archive."), str(error))
        return None
    digest = hashlib.sha256(data).hexdigest()
    if MANIFEST_DIGEST not in members:
        result.add(MANIFEST_DIGEST, "missing", _("The manifest's SHA-256 file is missing."))
    else:
        try:
            line = _read(zf, members[MANIFEST_DIGEST], 1024).decode("ascii", "replace").split()
        except _READ_ERRORS as error:
            line = []
            result.add(
                MANIFEST_DIGEST, "unreadable", _("The manifest's SHA-256 file cannot be read."), str(error)
            )
        if line and (line[0].lower() != digest or line[1:] not in ([MANIFEST], [f"*{MANIFEST}"])):
            result.add(
                MANIFEST,
                "sha256_mismatch",
                _("The manifest was changed: its SHA-256 is not the one recorded in manifest.sha256."),
                f"manifest.json is {digest}, manifest.sha256 says {' '.join(line)[:100]}",
            )
    if pinned and pinned.lower() != digest:
        result.add(
            MANIFEST,
            "sha256_not_pinned",
            _("The manifest is not the one recorded when the archive was made (its SHA-256 differs)."),
            f"manifest.json is {digest}, expected {pinned.lower()}",
        )
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        result.add(MANIFEST, "invalid", _("The manifest is not valid JSON."), str(error)[:200])
        return None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), list)
    ):
        result.add(MANIFEST, "invalid", _("The manifest is not the manifest of an archive of year records."))
        return None
    if manifest.get("format_version") != 1:
        result.add(
            MANIFEST,
            "format_version",
            _("The manifest's format version is not one this portal reads."),
            f"format_version {manifest.get('format_version')!r}",
        )
        return None
    return manifest


def _entries(manifest: dict[str, Any], result: ArchiveCheck) -> list[dict[str, Any]]:
    """The manifest's file entries that are well formed (others are findings on the manifest)."""
    good, seen = [], set()
    for n, entry in enumerate(manifest["files"]):
        path = entry.get("path") if isinstance(entry, dict) else None
        if (
            not isinstance(path, str)
            or _unsafe_name(path)
            or path in (MANIFEST, MANIFEST_DIGEST)
            or path in seen
            or not isinstance(entry.get("sha256"), str)
            or not _HEX64.match(entry["sha256"])
            or not isinstance(entry.get("size"), int)
            or entry.get("kind") not in KINDS
        ):
            result.add(
                MANIFEST,
                "invalid_entry",
                _("An entry of the manifest is malformed."),
                f"files[{n}]: {json.dumps(entry, ensure_ascii=False)[:200]}",
            )
            continue
        seen.add(path)
        good.append(entry)
    return good


def _created_at(manifest: dict[str, Any]) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(str(manifest.get("created_at")))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
