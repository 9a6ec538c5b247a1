"""What the archive holds, checked file by file: each record's XML and its signatures against only
the archive's own trust, each PDF's embedded XML and seal, each timestamp token, each renewal.
The verifying (the slow part) can run in forked worker processes; the parent alone reads the ZIP."""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import hashlib
import multiprocessing
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from django.utils.translation import gettext as _

from signing.archive.selectors import (
    all_valid,
    archive_pdf_problems,
    archive_record_reports,
)
from transcripts.document import year_record_parse
from transcripts.records.services import content_bytes_of

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
    timestamp_tokens,
)
from ..verification import PdfBomb, pdf_attachments
from .container import _created_at, _entries, _manifest, _read
from .report import _READ_ERRORS, ArchiveCheck, Limits


class _Member:
    """Reads listed members once, checking presence, size and SHA-256 as it goes."""

    def __init__(
        self, zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limits: Limits, result: ArchiveCheck
    ):
        self.zf, self.members, self.limits, self.result = zf, members, limits, result

    def read(self, entry: dict[str, Any]) -> tuple[bytes | None, bool]:
        """(the member's bytes or None if absent/unreadable, whether they are the listed ones)."""
        path, result = entry["path"], self.result
        info = self.members.get(path)
        if info is None:
            result.add(
                path, "missing", _("This file is listed in the manifest but missing from the archive.")
            )
            return None, False
        result.files_checked += 1
        allowed = self.limits.max_bytes.get(entry["kind"], 0)
        if info.file_size > allowed:
            result.add(
                path,
                "too_large",
                _("This file is larger than a file of its kind can be; it was not read."),
                f"{info.file_size} bytes, at most {allowed} for {entry['kind']}",
            )
            return None, False
        try:
            data = _read(self.zf, info, allowed)
        except _READ_ERRORS as error:
            result.add(
                path, "unreadable", _("This file is damaged in the archive and cannot be read."), str(error)
            )
            return None, False
        intact = True
        if len(data) != entry["size"]:
            result.add(
                path,
                "size_mismatch",
                _("This file's size is not the one in the manifest."),
                f"{len(data)} bytes, the manifest says {entry['size']}",
            )
            intact = False
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            result.add(
                path,
                "sha256_mismatch",
                _("This file was changed: its SHA-256 is not the one in the manifest."),
                f"SHA-256 {digest}, the manifest says {entry['sha256']}",
            )
            intact = False
        return data, intact


@dataclass(frozen=True)
class _Trust:
    """The archive's trust files whose hashes hold, as bytes (so a worker process can take them),
    and the moment the archive was made (what the verifiers judge at)."""

    roots: tuple[bytes, ...] = ()  # PEM
    tsa_roots: tuple[bytes, ...] = ()  # PEM
    crls: tuple[bytes, ...] = ()  # DER or PEM
    at: dt.datetime | None = None

    def loaded(
        self,
    ) -> tuple[list[x509.Certificate], list[x509.Certificate], list[x509.CertificateRevocationList]]:
        key = hashlib.sha256(b"\0".join((*self.roots, b"|", *self.tsa_roots, b"|", *self.crls))).hexdigest()
        if key not in _LOADED:
            _LOADED.clear()
            _LOADED[key] = (
                [c for pem in self.roots for c in x509.load_pem_x509_certificates(pem)],
                [c for pem in self.tsa_roots for c in x509.load_pem_x509_certificates(pem)],
                [_crl(data) for data in self.crls],
            )
        return _LOADED[key]


_LOADED: dict[str, Any] = {}  # per process: the one archive's trust material, parsed once


def _crl(data: bytes) -> x509.CertificateRevocationList:
    return (
        x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    )


def _trust(
    reader: _Member, entries: list[dict[str, Any]], result: ArchiveCheck, at: dt.datetime | None
) -> _Trust:
    found: dict[str, list[bytes]] = {KIND_ROOT: [], KIND_TSA_ROOT: [], KIND_CRL: []}
    for entry in entries:
        kind = entry["kind"]
        if kind not in found:
            continue
        data, intact = reader.read(entry)
        if data is None or not intact:
            continue  # named already; a changed trust file is not trusted
        try:
            if kind == KIND_CRL:
                _crl(data)
            elif not x509.load_pem_x509_certificates(data):
                raise ValueError("no certificate")
        except ValueError as error:
            result.add(entry["path"], "unreadable", _("This trust file cannot be read."), str(error)[:200])
            continue
        found[kind].append(data)
    if not found[KIND_ROOT]:
        result.add(
            "trust/roots/", "no_roots", _("The archive holds no trust root: no signature can be verified.")
        )
    return _Trust(tuple(found[KIND_ROOT]), tuple(found[KIND_TSA_ROOT]), tuple(found[KIND_CRL]), at)


def _records(
    entries: list[dict[str, Any]],
) -> Iterator[tuple[tuple[str, str, int], dict[str, list[dict[str, Any]]]]]:
    """The record files grouped by (school, record id, version), in manifest order."""
    groups: dict[tuple[str, str, int], dict[str, list[dict[str, Any]]]] = {}
    for entry in entries:
        if entry["kind"] in (KIND_XML, KIND_RENEWAL, KIND_PDF, KIND_TIMESTAMP):
            version = entry.get("version")
            key = (
                str(entry.get("school", "")),
                str(entry.get("record_id", "")),
                version if isinstance(version, int) else 0,
            )
            groups.setdefault(key, {}).setdefault(entry["kind"], []).append(entry)
    yield from groups.items()


def _check(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    limits: Limits,
    result: ArchiveCheck,
    pinned: str | None,
    jobs: int,
) -> None:
    manifest = _manifest(zf, members, limits, result, pinned)
    if manifest is None:
        return
    result.school_year = str(manifest.get("school_year", ""))[:9]
    entries = _entries(manifest, result)
    listed = {e["path"] for e in entries}
    for name in members:
        if name not in listed and name not in (MANIFEST, MANIFEST_DIGEST):
            result.add(name, "not_listed", _("This file is not listed in the manifest."))
    missing = manifest.get("missing")
    for item in missing if isinstance(missing, list) else []:
        if isinstance(item, dict):
            result.notes.append(
                f"{item.get('record_id', '?')} v{item.get('version', '?')} ({item.get('school', '?')}): "
                f"{str(item.get('reason', ''))[:200]}"
            )
    reader = _Member(zf, members, limits, result)
    for entry in entries:
        if entry["kind"] == KIND_README:
            reader.read(entry)
    trust = _trust(reader, entries, result, _created_at(manifest))
    with _Verifiers(jobs) as verifiers:
        for (_school, record_id, version), files in _records(entries):
            xml_entries = files.get(KIND_XML, [])
            xml_entry, xml = None, None
            if len(xml_entries) != 1:
                for other in (
                    files.get(KIND_PDF, []) + files.get(KIND_TIMESTAMP, []) + files.get(KIND_RENEWAL, [])
                ):
                    result.add(
                        other["path"],
                        "no_record",
                        _("This file belongs to no year record of the archive."),
                        f"{len(xml_entries)} XML entries for {record_id} v{version}",
                    )
            else:
                xml_entry = xml_entries[0]
                xml, _intact = reader.read(xml_entry)
            renewals = [(e, reader.read(e)[0]) for e in files.get(KIND_RENEWAL, [])]
            pdfs = [(e, reader.read(e)[0]) for e in files.get(KIND_PDF, [])]
            tokens = [(e, reader.read(e)[0]) for e in files.get(KIND_TIMESTAMP, [])]
            verifiers.submit(
                result,
                trust,
                xml_entry,
                xml,
                [(e, d) for e, d in renewals if d is not None],
                [(e, d) for e, d in pdfs if d is not None],
                [(e, d) for e, d in tokens if d is not None],
            )
            del xml, renewals, pdfs, tokens
        verifiers.drain(result)


def _verify_record(
    trust: _Trust,
    xml_entry: dict[str, Any] | None,
    xml: bytes | None,
    renewals: list[tuple[dict[str, Any], bytes]],
    pdfs: list[tuple[dict[str, Any], bytes]],
    tokens: list[tuple[dict[str, Any], bytes]],
) -> ArchiveCheck:
    """The signatures, the PDFs and the tokens of one record version (the CPU-bound part), on a
    fresh ArchiveCheck: run here, or in a worker process (everything it takes is bytes)."""
    part = ArchiveCheck()
    roots, tsa_roots, crls = trust.loaded()
    if xml_entry is not None and xml is not None:
        _check_xml(xml_entry, xml, roots, tsa_roots, crls, trust.at, part)
    if xml_entry is not None:
        for pdf_entry, pdf in pdfs:
            _check_pdf(pdf_entry, pdf, xml_entry, roots, tsa_roots, crls, part)
    if xml is not None:
        for renewal_entry, renewed in renewals:
            _check_renewal(renewal_entry, renewed, xml, roots, tsa_roots, crls, trust.at, part)
        carried = [xml, *(renewed for _e, renewed in renewals)]
        for token_entry, token in tokens:
            _check_token(token_entry, token, carried, part)
    return part


class _Verifiers:
    """Runs _verify_record here (jobs 1) or in `jobs` forked worker processes, at most 2 × jobs
    records in flight (the parent reads the ZIP; memory stays bounded), results merged in the
    archive's order so the report is the same whatever the number of jobs."""

    def __init__(self, jobs: int):
        self.jobs = max(1, jobs)
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.pending: collections.deque[concurrent.futures.Future[ArchiveCheck]] = collections.deque()

    def __enter__(self) -> _Verifiers:
        if self.jobs > 1:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.jobs, mp_context=multiprocessing.get_context("fork")
            )
        return self

    def submit(self, result: ArchiveCheck, trust: _Trust, *args: Any) -> None:
        if self.pool is None:
            result.merge(_verify_record(trust, *args))
            return
        self.pending.append(self.pool.submit(_verify_record, trust, *args))
        while len(self.pending) >= 2 * self.jobs:
            result.merge(self.pending.popleft().result())

    def drain(self, result: ArchiveCheck) -> None:
        while self.pending:
            result.merge(self.pending.popleft().result())

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _check_xml(
    entry: dict[str, Any],
    xml: bytes,
    roots: list[x509.Certificate],
    tsa_roots: list[x509.Certificate],
    crls: list[x509.CertificateRevocationList],
    at: dt.datetime | None,
    result: ArchiveCheck,
    *,
    counted: bool = True,
) -> None:
    path = entry["path"]
    result.records_checked += 1 if counted else 0
    try:
        document = year_record_parse(xml)
    except Exception as error:  # DocumentError, or anything a hostile file provokes: a finding, never a crash
        result.add(path, "not_a_year_record", _("This file is not a valid year record."), str(error)[:200])
        document = None
    if document is not None and (
        document.record_id != entry.get("record_id") or document.version != entry.get("version")
    ):
        result.add(
            path,
            "wrong_record",
            _("This year record is not the version the manifest lists under this name."),
            f"the document is {document.record_id} v{document.version}, the manifest says "
            f"{entry.get('record_id')} v{entry.get('version')}",
        )
    reports = archive_record_reports(xml, trust_roots=roots, crls=crls, tsa_roots=tsa_roots, at=at)
    result.signatures_checked += sum(1 for r in reports if r.position)
    for report in reports:
        for problem in report.problems:
            where = _("signature %(n)d") % {"n": report.position} if report.position else _("the document")
            result.add(
                path,
                f"signature:{problem.code}",
                _("%(where)s does not verify: %(reason)s") % {"where": where, "reason": problem.code.label},
                problem.detail,
            )
    if all(r.ok for r in reports) and not all_valid(reports):
        result.add(
            path,
            "signatures_missing",
            _("This year record does not carry the three signatures of an issued record."),
            f"{sum(1 for r in reports if r.position)} signatures",
        )


def _check_pdf(
    entry: dict[str, Any],
    pdf: bytes,
    xml_entry: dict[str, Any],
    roots: list[x509.Certificate],
    tsa_roots: list[x509.Certificate],
    crls: list[x509.CertificateRevocationList],
    result: ArchiveCheck,
) -> None:
    path = entry["path"]
    result.pdfs_checked += 1
    try:
        attachments = pdf_attachments(pdf)
    except PdfBomb as error:
        result.add(
            path,
            "pdf_bomb",
            _("This PDF's attachment inflates beyond any year record: not read."),
            str(error),
        )
        return
    digests = [hashlib.sha256(a).hexdigest() for a in attachments]
    if xml_entry["sha256"] not in digests:
        result.add(
            path,
            "pdf_without_xml",
            _("This PDF does not embed its year record (its attached XML differs or is missing)."),
            f"{len(attachments)} attachments, none with SHA-256 {xml_entry['sha256']}",
        )
    elif len(attachments) != 1:
        result.add(
            path,
            "pdf_extra_attachments",
            _("This PDF embeds other files besides its year record."),
            f"{len(attachments)} attachments",
        )
    sealed, problems = archive_pdf_problems(pdf, trust_roots=roots, crls=crls, tsa_roots=tsa_roots)
    result.pdf_signatures_checked += sealed
    for problem in problems:
        result.add(
            path,
            "pdf_signature",
            _("The PDF's own signature (its seal) does not verify."),
            problem,
        )


def _check_token(entry: dict[str, Any], token: bytes, documents: list[bytes], result: ArchiveCheck) -> None:
    position = entry.get("signature")
    carried = [
        t
        for document in documents
        for t in dict(timestamp_tokens(document)).get(position if isinstance(position, int) else -1, [])
    ]
    if token not in carried:
        result.add(
            entry["path"],
            "timestamp_not_in_record",
            _("This timestamp is not the one its year record's signature carries."),
            f"signature {position!r} carries {len(carried)} tokens, none equal to this file",
        )


def _check_renewal(
    entry: dict[str, Any],
    renewed: bytes,
    xml: bytes,
    roots: list[x509.Certificate],
    tsa_roots: list[x509.Certificate],
    crls: list[x509.CertificateRevocationList],
    at: dt.datetime | None,
    result: ArchiveCheck,
) -> None:
    """A renewal carries the issued content byte for byte, and its signatures (with their archive
    timestamps) verify as the issued document's do."""
    try:
        same = content_bytes_of(renewed) == content_bytes_of(xml)
    except ValueError:
        same = False
    if not same:
        result.add(
            entry["path"],
            "renewal_content",
            _("This renewed copy does not carry the issued year record's content byte for byte."),
        )
    _check_xml(entry, renewed, roots, tsa_roots, crls, at, result, counted=False)
