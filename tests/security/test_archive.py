"""Hostile archives handed to the archive check (registry.archive_check, manage.py verify_archive):
zip bombs, paths that climb out, huge or too many members, a member lying about its size, a
manifest pointing outside, not a ZIP at all. Each is refused (or its file named) with a clear
message; nothing is extracted to disk, nothing crashes."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile

import pytest
from django.core.management import call_command

from registry.archive import MANIFEST, MANIFEST_DIGEST
from registry.archive_check import Limits, archive_check


def _zip(members: dict[str, bytes], *, manifest: dict | None = None) -> bytes:
    """A ZIP of these members and, when given, a manifest (and its digest) listing `files`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if manifest is not None:
            data = json.dumps(manifest).encode()
            z.writestr(MANIFEST, data)
            z.writestr(MANIFEST_DIGEST, f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n")
    return buffer.getvalue()


def _manifest(files: dict[str, bytes], kind: str = "readme") -> dict:
    return {
        "format": "hocba-archive",
        "format_version": 1,
        "school_year": "2025-2026",
        "created_at": "2026-06-30T10:00:00+07:00",
        "files": [
            {"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d), "kind": kind}
            for p, d in files.items()
        ],
    }


def _verify(tmp_path, data: bytes) -> tuple[int, str]:
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    out = io.StringIO()
    try:
        call_command("verify_archive", str(path), stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "records/../../evil.txt", "/etc/evil", "C:/evil.txt", "records\\..\\evil", "a/./b"],
)
def test_a_path_that_climbs_out_is_refused_unread_and_nothing_is_written(tmp_path, name):
    data = _zip({"README.txt": b"x", name: b"evil"})
    result = archive_check(io.BytesIO(data))
    assert result.refused and [f.code for f in result.findings] == ["unsafe_path"]
    status, out = _verify(tmp_path, data)
    assert status == 2
    assert "không an toàn" in out or "unsafe" in out
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["archive.zip"]  # nothing extracted


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    bomb = _zip({"records/s/bomb.xml": bytes(40 * 1024 * 1024)})  # 40 MiB of zeros, ~40 KiB packed
    assert len(bomb) < 200_000
    result = archive_check(io.BytesIO(bomb))
    assert result.refused
    assert [(f.path, f.code) for f in result.findings] == [("records/s/bomb.xml", "zip_bomb")]


def test_a_member_larger_than_any_archive_file_is_refused(tmp_path):
    import os

    big = _zip({"records/s/big.pdf": os.urandom(2 * 1024 * 1024)})  # random: not compressible
    result = archive_check(io.BytesIO(big), limits=Limits(max_bytes={"pdf": 1024 * 1024}))
    assert result.refused and result.findings[0].code == "too_large"


def test_a_member_that_lies_about_its_size_is_read_only_as_far_as_it_says_and_named():
    """The central directory and the local header say 1,000 bytes; the stream inflates to 10 MiB.
    Reading stops at 1,000 bytes (zipfile bounds it by the declared size) and the CRC fails: the
    file is named as damaged."""
    payload = bytes(10 * 1024 * 1024)
    files = {"README.txt": payload[:1000]}
    data = bytearray(_zip({"README.txt": payload}, manifest=_manifest(files)))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        assert struct.unpack_from("<I", data, at + offset)[0] == len(payload)
        struct.pack_into("<I", data, at + offset, 1000)
    result = archive_check(io.BytesIO(bytes(data)))
    assert not result.refused
    assert [(f.path, f.code) for f in result.findings if f.path == "README.txt"] == [
        ("README.txt", "unreadable")
    ]


def test_too_many_members_are_refused():
    data = _zip({f"records/s/{n}.xml": b"<x/>" for n in range(20)})
    result = archive_check(io.BytesIO(data), limits=Limits(max_entries=10))
    assert result.refused and result.findings[0].code == "too_many_entries"


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    for data in (b"", b"%PDF-1.7 not a zip", b"PK\x03\x04" + bytes(100), bytes(1000)):
        result = archive_check(io.BytesIO(data))
        assert result.refused and result.findings[0].code == "not_a_zip"
        status, _out = _verify(tmp_path, data)
        assert status == 2
    # An empty ZIP is a ZIP: checked, and found without its manifest.
    empty = archive_check(io.BytesIO(b"PK\x05\x06" + bytes(18)))
    assert not empty.ok and [(f.path, f.code) for f in empty.findings] == [(MANIFEST, "missing")]


def test_a_manifest_that_points_outside_the_archive_is_named_not_followed():
    files = {"README.txt": b"hello"}
    manifest = _manifest(files)
    manifest["files"].append({"path": "../../etc/passwd", "sha256": "0" * 64, "size": 1, "kind": "readme"})
    manifest["files"].append({"path": "records/x.xml", "sha256": "nothex", "size": "1", "kind": "xml"})
    manifest["files"].append("not even an object")
    result = archive_check(io.BytesIO(_zip(files, manifest=manifest)))
    assert not result.refused
    assert [f.code for f in result.findings if f.path == MANIFEST] == ["invalid_entry"] * 3


def test_a_hostile_manifest_does_not_crash_the_check():
    for manifest in (
        b"[]",
        b"{",
        b'{"format": "hocba-archive", "files": {}}',
        b"\xff\xfe",
        b"null",
        b'{"format": "hocba-archive", "format_version": 1, "files": [], "missing": 5, "created_at": []}',
        b'{"format": "hocba-archive", "format_version": 1, "files": [{"path": "a", "kind": "xml", '
        b'"sha256": "' + b"0" * 64 + b'", "size": 1, "version": "x", "record_id": []}], "school_year": {}}',
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr(MANIFEST, manifest)
        result = archive_check(io.BytesIO(buffer.getvalue()))
        assert not result.ok and not result.refused and result.findings  # named, never a crash


def test_a_hostile_xml_inside_is_named_not_parsed_with_entities():
    billion_laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<hocba>&lol2;</hocba>"
    )
    files = {"records/s/r-v1.xml": billion_laughs}
    manifest = _manifest(files, kind="xml")
    manifest["files"][0].update(school="s", record_id="r", version=1)
    result = archive_check(io.BytesIO(_zip(files, manifest=manifest)))
    assert not result.refused
    codes = {f.code for f in result.findings if f.path == "records/s/r-v1.xml"}
    assert "not_a_year_record" in codes
