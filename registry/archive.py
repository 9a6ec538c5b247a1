"""An archive a department can keep: one school year's issued records as a ZIP that checks offline.

Issue 13 ("An archive a department can keep"). `archive_write` writes, into a file object, a ZIP
of every version issued in one school year by a set of schools (one school, a division, the
province), as the public index (portal.IssuedRecord) lists them, superseded and revoked versions
included (the manifest says which):

    README.txt                                   what this is and how to check it (Vietnamese)
    manifest.json                                format, school year, scope, when, by which portal,
                                                 and every other file: path, SHA-256, size, kind,
                                                 and for a record's files its id, version, school,
                                                 status
    manifest.sha256                              the manifest's SHA-256 (`sha256sum -c` reads it)
    records/<school code>/<record id>-v<n>.xml   the sealed document, exactly the issued bytes
    records/<school code>/<record id>-v<n>.renewed.xml
                                                 its latest renewal (archive timestamps added,
                                                 XAdES-LTA), when it has been renewed
    records/<school code>/<record id>-v<n>.pdf   its PDF/A-3b (embeds that XML), when rendered
    timestamps/<school code>/<record id>-v<n>-sig<k>[-<j>].tst
                                                 each signature's RFC 3161 tokens, taken from the
                                                 xades:EncapsulatedTimeStamp elements (XAdES-T,
                                                 and the renewal's archive timestamps)
    trust/roots/signer-<n>.pem, tsa-<n>.pem      the roots the signatures and timestamps chain to
    trust/crls/<n>.crl                           the CRLs as read (fresh) when the archive was made

The ZIP is written member by member to the file object (zipfile on a file, nothing but one
record's bytes in memory at a time), so a province's archive goes to disk, not to RAM. A version
whose school copy is missing or differs from the index (registry.verification.issued_xml says so
and logs it) is not written: the manifest lists it under "missing" with the reason, and the
builder's summary counts it. The checker is registry.archive_check.

Whoever keeps the archive should keep the manifest's SHA-256 apart from it (the export command
prints it, the pages show it): the manifest.sha256 inside only proves the manifest whole, not
that nobody rewrote the entire archive; `verify_archive --manifest-sha256` pins it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import zipfile
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.utils import timezone
from lxml import etree

from portal.models import Department, IssuedRecord, School
from signing.archive.selectors import archive_trust_material
from transcripts.models import YearRecord, YearRecordPdf
from transcripts.records.selectors import DocumentUnavailable, document_get

from .verification import archived_xml, issued_xml

FORMAT = "hocba-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
README = "README.txt"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")
BATCH = 200  # index rows read at a time

# The kinds of file a manifest lists.
KIND_XML = "xml"
KIND_RENEWAL = "renewal"
KIND_PDF = "pdf"
KIND_TIMESTAMP = "timestamp"
KIND_ROOT = "root"
KIND_TSA_ROOT = "tsa_root"
KIND_CRL = "crl"
KIND_README = "readme"
KINDS = (KIND_XML, KIND_RENEWAL, KIND_PDF, KIND_TIMESTAMP, KIND_ROOT, KIND_TSA_ROOT, KIND_CRL, KIND_README)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def school_year_valid(value: str) -> bool:
    """ "2025-2026": four digits, a dash, the next year."""
    match = SCHOOL_YEAR.match(value or "")
    return match is not None and int(match.group(2)) == int(match.group(1)) + 1


def safe_name(value: str) -> str:
    """A file name made of letters, digits, dot, dash and underscore only (never '..')."""
    name = _UNSAFE.sub("_", value).strip(".") or "_"
    return name.replace("..", "_")


@dataclass(frozen=True)
class ArchiveScope:
    """What an archive covers: one school, a division's schools, or the province's."""

    kind: str  # "school", "division", "province" (registry.models_archive.ArchiveScopeKind)
    code: str
    name: str
    schools: tuple[School, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "code": self.code,
            "name": self.name,
            "schools": [{"code": s.code, "name": s.name} for s in self.schools],
        }


@dataclass
class ArchiveSummary:
    """What went into an archive: counts, and the versions that could not (with why)."""

    school_year: str
    created_at: dt.datetime
    records: int = 0  # versions written (XML)
    pdfs: int = 0
    timestamps: int = 0
    renewals: int = 0
    files: int = 0  # listed in the manifest
    missing: list[dict[str, Any]] = field(default_factory=list)
    manifest_sha256: str = ""


def timestamp_tokens(xml: bytes) -> list[tuple[int, list[bytes]]]:
    """Each signature's RFC 3161 tokens (DER), in document order: [(position, [token, ...])].

    Read from xades:EncapsulatedTimeStamp (XAdES-T's SignatureTimeStamp, and any other timestamp
    the signature carries) under each ds:Signature of the year record's <chuky>. A document with
    no timestamps (baseline B) gives positions with empty lists; an unreadable one gives [].
    """
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        return []
    found: list[tuple[int, list[bytes]]] = []
    for position, signature in enumerate(root.iter(f"{{{DS_NS}}}Signature"), start=1):
        tokens = []
        for element in signature.iter(f"{{{XADES_NS}}}EncapsulatedTimeStamp"):
            try:
                tokens.append(base64.b64decode("".join((element.text or "").split()), validate=True))
            except (binascii.Error, ValueError):
                continue  # not base64: the verifier names it; nothing to keep
        found.append((position, tokens))
    return found


def _readme(summary: ArchiveSummary, scope: ArchiveScope, portal_name: str) -> str:
    schools = ", ".join(f"{s.code} ({s.name})" for s in scope.schools) or "-"
    return f"""LƯU TRỮ HỌC BẠ SỐ — NĂM HỌC {summary.school_year}
(Digital school transcript archive, school year {summary.school_year}; English below.)

Đơn vị: {scope.name} ({scope.code})
Trường: {schools}
Cổng học bạ số: {portal_name}
Lập lúc: {summary.created_at.isoformat()}

Tệp nén này chứa mọi học bạ năm học đã ban hành của năm học trên (kể cả các phiên bản đã được
đính chính hoặc thu hồi: tệp manifest.json ghi trạng thái của từng phiên bản):

- records/<mã trường>/<mã học bạ>-v<phiên bản>.xml: học bạ đã ký số (giáo viên chủ nhiệm,
  hiệu trưởng, con dấu của trường), đúng từng byte như khi ban hành;
- records/<mã trường>/<mã học bạ>-v<phiên bản>.renewed.xml: bản gia hạn mới nhất (thêm dấu thời
  gian lưu trữ XAdES-LTA, nội dung học bạ giữ nguyên từng byte), nếu học bạ đã được gia hạn;
- records/<mã trường>/<mã học bạ>-v<phiên bản>.pdf: bản PDF/A-3b, đính kèm chính tệp XML đó;
- timestamps/: dấu thời gian RFC 3161 của từng chữ ký (khi chữ ký có dấu thời gian);
- trust/roots/: chứng thư gốc tin cậy (của người ký và của dịch vụ cấp dấu thời gian);
- trust/crls/: danh sách chứng thư bị thu hồi (CRL) tại thời điểm lập lưu trữ;
- manifest.json: danh sách mọi tệp với mã băm SHA-256 và kích thước;
- manifest.sha256: mã băm SHA-256 của manifest.json.

CÁCH KIỂM TRA (không cần mạng, không cần cơ sở dữ liệu của cổng):

    python manage.py verify_archive <tệp.zip>

Lệnh kiểm tra từng tệp theo manifest (có đủ, đúng SHA-256, đúng kích thước, không có tệp lạ),
kiểm tra mọi chữ ký số của từng học bạ chỉ với chứng thư gốc và CRL trong tệp nén này, và kiểm
tra mỗi tệp PDF đính kèm đúng tệp XML của nó. Mỗi tệp có vấn đề được nêu tên trên một dòng.
Kết quả 0 (không có vấn đề) nghĩa là lưu trữ còn nguyên vẹn.
Nên ghi lại mã SHA-256 của manifest.json ở nơi khác (sổ lưu trữ): khi kiểm tra, thêm
--manifest-sha256 <mã> để chắc rằng không ai thay cả tệp nén.
Kiểm tra nhanh tính toàn vẹn bằng công cụ thông thường: giải nén rồi chạy
"sha256sum -c manifest.sha256", và so từng tệp với manifest.json.

---
This archive holds every year record issued in the school year above by the schools listed
(superseded and revoked versions included; manifest.json gives each version's status), with the
trust roots, CRLs and timestamps they need. Check it offline with
`python manage.py verify_archive <file.zip>` (add --manifest-sha256 <hex> with the manifest's
SHA-256 recorded elsewhere). Exit status 0 means every file is present, unchanged, and every
record's signatures verify against this archive's own trust material only.
"""


class _Writer:
    """Members into a ZipFile, each listed (path, SHA-256, size, kind, extra) for the manifest."""

    def __init__(self, out: IO[bytes]):
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.entries: list[dict[str, Any]] = []
        self._paths: set[str] = set()

    def add(self, path: str, data: bytes, kind: str, **extra: Any) -> None:
        if path in self._paths:  # two versions mapped to one safe name: never overwrite
            stem, dot, ext = path.rpartition(".")
            path = f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{dot}{ext}"
        self._paths.add(path)
        # PDFs and DER are already compressed: stored as they are.
        compress = (
            zipfile.ZIP_STORED if kind in (KIND_PDF, KIND_TIMESTAMP, KIND_CRL) else zipfile.ZIP_DEFLATED
        )
        self.zip.writestr(self._info(path), data, compress_type=compress)
        self.entries.append(
            {
                "path": path,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "kind": kind,
                **extra,
            }
        )

    def write_unlisted(self, path: str, data: bytes) -> None:
        self.zip.writestr(self._info(path), data, compress_type=zipfile.ZIP_DEFLATED)

    @staticmethod
    def _info(path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))  # the same bytes, the same ZIP
        info.external_attr = 0o644 << 16
        return info

    def close(self) -> None:
        self.zip.close()


def _entries(school: School, school_year: str) -> Iterable[list[IssuedRecord]]:
    rows = (
        IssuedRecord.objects.filter(school=school, school_year=school_year)
        .select_related("school")
        .order_by("record_id", "version")
    )
    batch: list[IssuedRecord] = []
    for entry in rows.iterator(chunk_size=BATCH):
        batch.append(entry)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _pdfs(school: School, batch: list[IssuedRecord]) -> dict[tuple[str, int], bytes | DocumentUnavailable]:
    """The stored PDFs of these versions (one query, then the documents storage), from the school's
    schema: each one's bytes, checked against its SHA-256, or why it cannot be read (missing from
    the storage, changed there: never put in the archive)."""
    wanted = {(e.record_id, e.version) for e in batch}
    with school:
        pks = {
            pk: (record_id, version)
            for pk, record_id, version in YearRecord.objects.filter(
                record_id__in={r for r, _v in wanted}
            ).values_list("pk", "record_id", "version")
            if (record_id, version) in wanted
        }
        stored = list(  # read here, on the school's schema
            YearRecordPdf.objects.filter(record_id__in=list(pks)).values_list("record_id", "name", "sha256")
        )
    found: dict[tuple[str, int], bytes | DocumentUnavailable] = {}
    for record_pk, name, sha256 in stored:
        try:
            found[pks[record_pk]] = document_get(name, sha256)
        except DocumentUnavailable as error:
            found[pks[record_pk]] = error
    return found


def archive_write(
    out: IO[bytes], *, school_year: str, scope: ArchiveScope, now: dt.datetime | None = None
) -> ArchiveSummary:
    """Write the archive of `school_year` for `scope` into `out` (a writable binary file object;
    seekable or not). Returns what went in; the file holds the ZIP once this returns."""
    steps = archive_stream(out, school_year=school_year, scope=scope, now=now)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def archive_stream(
    out: IO[bytes], *, school_year: str, scope: ArchiveScope, now: dt.datetime | None = None
) -> Generator[None, None, ArchiveSummary]:
    """archive_write, one step at a time: yields after each record version is written into `out`
    (so a response can send the bytes written so far), returns the summary when the ZIP is whole.
    Closing the generator early closes the ZIP (then incomplete, without its manifest)."""
    if not school_year_valid(school_year):
        raise ValueError(f"Not a school year: {school_year!r}")
    summary = ArchiveSummary(school_year=school_year, created_at=now or timezone.now())
    department = Department.objects.first()
    portal_name = department.name if department is not None else ""
    writer = _Writer(out)
    try:
        writer.add(README, _readme(summary, scope, portal_name).encode(), KIND_README)
        material = archive_trust_material()
        for n, pem in enumerate(material.roots, start=1):
            writer.add(f"trust/roots/signer-{n}.pem", pem, KIND_ROOT)
        for n, pem in enumerate(material.tsa_roots, start=1):
            writer.add(f"trust/roots/tsa-{n}.pem", pem, KIND_TSA_ROOT)
        for n, der in enumerate(material.crls, start=1):
            writer.add(f"trust/crls/{n}.crl", der, KIND_CRL)
        yield
        for school in sorted(scope.schools, key=lambda s: s.code):
            yield from _write_school(writer, summary, school, school_year)
        summary.files = len(writer.entries)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "school_year": school_year,
            "scope": scope.as_dict(),
            "created_at": summary.created_at.isoformat(),
            "portal": {"name": portal_name, "url": getattr(settings, "HOCBA_PUBLIC_URL", "")},
            "counts": {
                "records": summary.records,
                "renewals": summary.renewals,
                "pdfs": summary.pdfs,
                "timestamps": summary.timestamps,
            },
            "files": writer.entries,
            "missing": summary.missing,
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=False).encode()
        summary.manifest_sha256 = hashlib.sha256(data).hexdigest()
        writer.write_unlisted(MANIFEST, data)
        writer.write_unlisted(MANIFEST_DIGEST, f"{summary.manifest_sha256}  {MANIFEST}\n".encode())
    finally:
        writer.close()
    return summary


def _write_school(
    writer: _Writer, summary: ArchiveSummary, school: School, school_year: str
) -> Generator[None, None, None]:
    folder = safe_name(school.code)
    for batch in _entries(school, school_year):
        pdfs = _pdfs(school, batch)
        for entry in batch:
            about = {
                "school": school.code,
                "record_id": entry.record_id,
                "version": entry.version,
                "status": entry.status,
                "issued_at": entry.issued_at.isoformat(),
            }
            xml = issued_xml(entry)  # exactly the bytes the index says were issued, or None
            if xml is None:
                summary.missing.append({**about, "reason": "school copy missing or differs from the index"})
                yield
                continue
            stem = f"records/{folder}/{safe_name(entry.record_id)}-v{entry.version}"
            writer.add(f"{stem}.xml", xml, KIND_XML, **about)
            summary.records += 1
            # Its latest renewal (archive timestamps, XAdES-LTA), when it has one: the issued
            # bytes stay as issued (the index's hash, the PDF's attachment); the renewal is what
            # keeps them verifiable once the first timestamps' certificates lapse.
            renewed = archived_xml(entry, xml)
            if renewed != xml:
                writer.add(f"{stem}.renewed.xml", renewed, KIND_RENEWAL, **about)
                summary.renewals += 1
            pdf = pdfs.get((entry.record_id, entry.version))
            if isinstance(pdf, DocumentUnavailable):
                summary.missing.append({**about, "reason": f"PDF {pdf.reason} in the document storage"})
            elif pdf is not None:
                writer.add(f"{stem}.pdf", pdf, KIND_PDF, **about)
                summary.pdfs += 1
            else:
                summary.missing.append({**about, "reason": "PDF not rendered yet"})
            tsa_stem = f"timestamps/{folder}/{safe_name(entry.record_id)}-v{entry.version}"
            for position, tokens in timestamp_tokens(renewed):  # the renewal's include the issued ones
                for j, token in enumerate(tokens, start=1):
                    suffix = "" if len(tokens) == 1 else f"-{j}"
                    writer.add(
                        f"{tsa_stem}-sig{position}{suffix}.tst",
                        token,
                        KIND_TIMESTAMP,
                        signature=position,
                        **about,
                    )
                    summary.timestamps += 1
            yield


def scope_school(school: School) -> ArchiveScope:
    return ArchiveScope(kind="school", code=school.code, name=school.name, schools=(school,))


def scope_schools(schools: Iterable[School]) -> ArchiveScope:
    chosen = tuple(sorted(schools, key=lambda s: s.code))
    if len(chosen) == 1:
        return scope_school(chosen[0])
    return ArchiveScope(kind="schools", code=",".join(s.code for s in chosen), name="", schools=chosen)


def scope_division(division) -> ArchiveScope:
    schools = tuple(School.objects.filter(division=division).order_by("code"))
    return ArchiveScope(kind="division", code=division.code, name=division.name, schools=schools)


def scope_province() -> ArchiveScope:
    department = Department.objects.first()
    return ArchiveScope(
        kind="province",
        code=department.code if department else "",
        name=department.name if department else "",
        schools=tuple(School.objects.order_by("code")),
    )
