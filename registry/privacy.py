"""A person's data exported on request (Personal Data Protection Law 2025), with the access logged.

The Law (Luật Bảo vệ dữ liệu cá nhân 2025, in force 1 January 2026) gives the data subject (the
student, or the parent or guardian of a minor) the right to obtain their personal data; the school
(the controller) provides it. `student_data_export` writes, into a file object, one ZIP with
everything the portal holds about the person, from every school given:

    README.txt        what each file is (Vietnamese first, then English)
    data.json         identity (schools), every enrolment and assessment with the history of
                      each change (transcripts), the year records' versions, their lifecycle,
                      their signatures (signing), what happened outside the school (the public
                      index, the forwarding to the Ministry); the list of files with their SHA-256
    access_log.csv    who saw, copied, verified, forwarded or exported this person's data, when
    records/<school code>/<record id>-v<n>.pdf|.xml
                      each year record version's PDF and XML, read through transcripts' documents
                      storage and checked against the SHA-256 the database records
    attached/<school code>/<record id>-v<n>.xml
                      earlier records from other schools attached to the student's book

It lives at the top of the chain (design.md §2) because it reads every app below, through their
public face only. The ZIP is written member by member to the file object (one document's bytes in
memory at a time; the view and the command give a temporary file), never built in memory.

Logged: every export writes one registry.PersonalDataExport row (who, when, why, whose data, the
ZIP's SHA-256) and one portal.CopyLog row per record document handed over (domain.md §1), in the
transaction that decides the export and only once the ZIP is whole: an export that fails leaves
no row. The next export's access log lists this one. Two submissions are two exports, both logged.

Queries: a fixed number per school (the student, enrolments, each assessment table, the history,
the records and their events, signatures, renewals, attached records, then the public index,
verifications, copies, forwarding, audit rows), one per document for the copy log, and a fixed
number for the person (partner API calls, earlier exports): none per year or subject.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import AuditEntry, CopyLog, Department, IssuedRecord, School, User, VerificationLog
from portal.permissions import can_export_personal_data, can_export_personal_data_across_schools
from portal.selectors import personal_id_digest
from schools.models import Enrolment, Student
from transcripts.models import (
    AssessmentChange,
    AttachedRecord,
    PrimarySubjectAssessment,
    QualityAssessment,
    Retake,
    StudentYear,
    SubjectTermScores,
    YearRecord,
    YearRecordEvent,
    YearRecordRenewal,
    YearRecordSignature,
)
from transcripts.records.selectors import DocumentUnavailable, document_get
from transcripts.records.services import year_record_copy_log

from .models import ApiCall, OutboxMessage
from .models_privacy import REASON_MAX_LENGTH, PersonalDataExport, PersonalDataExportChannel

FORMAT = "hocba-personal-data"
FORMAT_VERSION = 1
README = "README.txt"
DATA = "data.json"
ACCESS_LOG = "access_log.csv"
PERSONAL_ID = re.compile(r"^[0-9]{12}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

# The kinds of event in the access log.
EVENT_COPY = "copy"
EVENT_VERIFICATION = "verification"
EVENT_PARTNER_API = "partner_api"
EVENT_FORWARDED = "forwarded"
EVENT_EXPORT = "export"
EVENT_AUDIT = "audit"
EVENT_SCHOOL_DATA_OPENED = "school_data_opened"


def export_reason_clean(value: object) -> str:
    """The request reference or reason, as kept: one line, 1-300 characters, no control or
    formatting characters (a bidi override could make the log say something else). ValidationError
    with a Vietnamese message otherwise."""
    text = str(value or "").strip()
    if not text:
        raise ValidationError(
            _("Give the written request's reference or the reason for the export."), code="required"
        )
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError(
            _("The request reference or reason is too long: at most %(max)d characters.")
            % {"max": REASON_MAX_LENGTH},
            code="too_long",
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for ch in text):
        raise ValidationError(
            _("The request reference or reason may hold only one line of ordinary text."),
            code="control_characters",
        )
    return text


@dataclass(frozen=True)
class ExportSubject:
    """One school's student record of the person: the school and the student's id in its schema."""

    school: School
    student_id: int


def export_subjects_by_personal_id(personal_id: str) -> list[ExportSubject]:
    """Every school's student with this personal ID number, across the province (a student who moved
    schools has a row in each). One query per school: a rare request, made by the Department."""
    if not PERSONAL_ID.fullmatch(personal_id or ""):
        raise ValidationError(_("A personal ID number is 12 digits."), code="personal_id")
    found: list[ExportSubject] = []
    for school in School.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("code"):
        with school:
            found.extend(
                ExportSubject(school=school, student_id=pk)
                for pk in Student.objects.filter(personal_id=personal_id).values_list("pk", flat=True)
            )
    return found


# --- Plain data ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _fields(obj: models.Model, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The row's own values by field name (no ids, no relations, no bytes), with each choice's label."""
    skipped = set(skip)
    out: dict[str, Any] = {}
    for f in obj._meta.concrete_fields:
        if f.primary_key or f.is_relation or f.name in skipped or isinstance(f, models.BinaryField):
            continue
        value = getattr(obj, f.attname)
        out[f.name] = _plain(value)
        if f.choices and value not in (None, ""):
            out[f"{f.name}_label"] = str(dict(f.flatchoices).get(value, value))
    return out


def _who(user: User | None) -> str:
    if user is None:
        return ""
    return f"{user.get_full_name()} ({user.username})"


def safe_name(value: str) -> str:
    name = _UNSAFE.sub("_", value).strip(".") or "_"
    return name.replace("..", "_")


# --- The ZIP ---------------------------------------------------------------------------------


class _Counted(io.RawIOBase):
    """A write-only view of the output that hashes and counts what goes through it. Not seekable,
    so zipfile streams (data descriptors) and the hash is of the very bytes written."""

    def __init__(self, out: IO[bytes]):
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.out.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.size

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("not seekable")

    def flush(self) -> None:
        self.out.flush()


class _Zip:
    """Members into the ZIP, each listed with its SHA-256 and size for data.json."""

    def __init__(self, out: IO[bytes]):
        self.counted = _Counted(out)
        self.zip = zipfile.ZipFile(self.counted, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[arg-type]
        self.files: list[dict[str, Any]] = []
        self._paths: set[str] = set()

    def add(self, path: str, data: bytes, kind: str, **extra: Any) -> str:
        if path in self._paths:
            stem, dot, ext = path.rpartition(".")
            path = f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{dot}{ext}"
        self._paths.add(path)
        info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        compress = zipfile.ZIP_STORED if kind == "pdf" else zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data, compress_type=compress)
        self.files.append(
            {
                "path": path,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "kind": kind,
                **extra,
            }
        )
        return path

    def close(self) -> None:
        self.zip.close()

    def abandon(self) -> None:
        """After a failure: write nothing more (ZipFile would write its directory when collected)."""
        self.zip.fp = None


# --- Gathering -------------------------------------------------------------------------------


@dataclass
class _Gathered:
    """What one export collects: the schools' parts, the access log, the documents handed over."""

    schools: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[dict[str, Any]] = field(default_factory=list)
    record_ids: set[str] = field(default_factory=set)
    students: list[str] = field(default_factory=list)
    copies: list[tuple[School, YearRecord, bytes, str]] = field(default_factory=list)


def _event(at: dt.datetime | None, kind: str, who: str, school: str, detail: str) -> dict[str, Any]:
    return {"at": _plain(at), "event": kind, "who": who, "school": school, "detail": detail}


def _document(
    zip_out: _Zip,
    gathered: _Gathered,
    *,
    read: Any,
    path: str,
    kind: str,
    school: School,
    record: YearRecord | None,
    what: dict[str, Any],
) -> dict[str, Any] | None:
    """Read one document (checked against its SHA-256 by `read`) into the ZIP; None, and listed as
    unavailable with why, when it cannot be read or its bytes are not the ones recorded."""
    try:
        data = read()
    except DocumentUnavailable as error:
        gathered.unavailable.append({**what, "kind": kind, "reason": error.reason})
        return None
    written = zip_out.add(path, data, kind, **what)
    if record is not None and kind in ("pdf", "xml"):
        gathered.copies.append((school, record, data, kind))
    return {"path": written, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _checked(data: bytes, sha256: str, name: str) -> Any:
    def read() -> bytes:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise _Tampered(name)
        return data

    return read


class _Tampered(DocumentUnavailable):
    reason = "tampered"


def _school_part(subject: ExportSubject, zip_out: _Zip, gathered: _Gathered) -> dict[str, Any]:
    """One school's data of the student, read on its schema, and its record documents into the ZIP."""
    school = subject.school
    code = safe_name(school.code)
    with school:
        student = Student.objects.get(pk=subject.student_id)
        gathered.students.append(f"{school.code}/{student.student_code}")
        enrolments = list(
            Enrolment.objects.filter(student=student)
            .select_related("school_class__school_year", "school_class__homeroom_teacher")
            .order_by("school_class__school_year__starts_on", "enrolled_on", "pk")
        )
        ids = [e.pk for e in enrolments]
        scores = list(
            SubjectTermScores.objects.filter(enrolment_id__in=ids).select_related("subject").order_by("pk")
        )
        primary = list(
            PrimarySubjectAssessment.objects.filter(enrolment_id__in=ids)
            .select_related("subject")
            .order_by("pk")
        )
        qualities = list(QualityAssessment.objects.filter(enrolment_id__in=ids).order_by("pk"))
        years = {y.enrolment_id: y for y in StudentYear.objects.filter(enrolment_id__in=ids)}
        retakes = list(Retake.objects.filter(enrolment_id__in=ids).select_related("subject").order_by("pk"))
        history = list(
            AssessmentChange.objects.filter(enrolment_id__in=ids)
            .select_related("subject", "actor")
            .order_by("at", "pk")
        )
        records = list(
            YearRecord.objects.filter(enrolment_id__in=ids)
            .select_related("created_by", "pdf", "xml_copy")
            .order_by("record_id", "version")
        )
        pks = [r.pk for r in records]
        events = list(
            YearRecordEvent.objects.filter(record_id__in=pks).select_related("actor").order_by("at", "pk")
        )
        signatures = list(
            YearRecordSignature.objects.filter(record_id__in=pks)
            .select_related("signer")
            .order_by("record_id", "position")
        )
        renewals = list(
            YearRecordRenewal.objects.filter(record_id__in=pks)
            .defer("renewed_xml")
            .order_by("record_id", "pk")
        )
        attached = list(
            AttachedRecord.objects.filter(student=student).select_related("attached_by").order_by("pk")
        )
    record_ids = {r.record_id for r in records}
    gathered.record_ids |= record_ids
    by_enrolment: dict[int, dict[str, list[dict[str, Any]]]] = {
        pk: {"subject_terms": [], "primary_subjects": [], "qualities": [], "re_assessments": []} for pk in ids
    }
    for term in scores:
        by_enrolment[term.enrolment_id]["subject_terms"].append(
            {"subject": term.subject.name, **_fields(term)}
        )
    for level in primary:
        by_enrolment[level.enrolment_id]["primary_subjects"].append(
            {"subject": level.subject.name, **_fields(level)}
        )
    for quality in qualities:
        by_enrolment[quality.enrolment_id]["qualities"].append(_fields(quality))
    for retake in retakes:
        by_enrolment[retake.enrolment_id]["re_assessments"].append(
            {"subject": retake.subject.name, **_fields(retake)}
        )

    # The public side of these records: the index, verifications, copies, forwarding, audit rows.
    issued = list(IssuedRecord.objects.filter(school=school, record_id__in=record_ids))
    issued_by_version = {(i.record_id, i.version): i for i in issued}
    verifications = list(
        VerificationLog.objects.filter(issued_record__in=issued)
        .select_related("issued_record")
        .order_by("at", "pk")
    )
    copies = list(
        CopyLog.objects.filter(school=school, record_id__in=record_ids).select_related("actor").order_by("at")
    )
    forwarding = list(
        OutboxMessage.objects.filter(school=school, record_id__in=record_ids)
        .defer("document")
        .order_by("created_at", "pk")
    )
    audit = list(
        AuditEntry.objects.filter(
            Q(object_type="transcripts.yearrecord", object_id__in=[str(pk) for pk in pks])
            | Q(object_type="schools.student", object_id=str(student.pk))
            | Q(action=AuditAction.SCHOOL_DATA_VIEWED, summary__regex=_pages_of(student.pk, enrolments, pks)),
            school=school,
        )
        .select_related("actor")
        .order_by("at", "pk")
    )

    events_by_record: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        events_by_record.setdefault(event.record_id, []).append({"by": _who(event.actor), **_fields(event)})
    signatures_by_record: dict[int, list[YearRecordSignature]] = {}
    for signature in signatures:
        signatures_by_record.setdefault(signature.record_id, []).append(signature)
    renewals_by_record: dict[int, list[dict[str, Any]]] = {}
    for renewal in renewals:
        renewals_by_record.setdefault(renewal.record_id, []).append(_fields(renewal))
    forwarding_by_version: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for message in forwarding:
        forwarding_by_version.setdefault((message.record_id, message.version), []).append(
            _fields(message, skip=("lease_owner", "lease_until", "idempotency_key", "polls"))
        )
        if message.sent_at:
            gathered.events.append(
                _event(
                    message.sent_at,
                    EVENT_FORWARDED,
                    _("The Ministry's repository"),
                    school.code,
                    f"{message.record_id} v{message.version} ({message.get_kind_display()}): "
                    f"{message.get_state_display()}",
                )
            )

    class_of = {e.pk: e.school_class for e in enrolments}
    year_records = []
    for record in records:
        what = {"school": school.code, "record_id": record.record_id, "version": record.version}
        stem = f"records/{code}/{safe_name(record.record_id)}-v{record.version}"
        signed = signatures_by_record.get(record.pk, [])
        pdf_row = getattr(record, "pdf", None)
        pdf = None
        if pdf_row is not None:
            pdf = _document(
                zip_out,
                gathered,
                read=lambda row=pdf_row: document_get(row.name, row.sha256),
                path=stem + ".pdf",
                kind="pdf",
                school=school,
                record=record,
                what=what,
            )
        xml_row = getattr(record, "xml_copy", None)
        if xml_row is not None:
            read = lambda row=xml_row: document_get(row.name, row.sha256)  # noqa: E731
        elif signed:
            latest = signed[-1]
            read = _checked(bytes(latest.signed_xml), latest.sha256, stem)
        else:
            read = _checked(bytes(record.xml), record.sha256, stem)
        xml = _document(
            zip_out,
            gathered,
            read=read,
            path=stem + ".xml",
            kind="xml",
            school=school,
            record=record,
            what=what,
        )
        entry = issued_by_version.get((record.record_id, record.version))
        year_records.append(
            {
                **_fields(record),
                "school_year": class_of[record.enrolment_id].school_year.code,
                "class": class_of[record.enrolment_id].name,
                "created_by": _who(record.created_by),
                "lifecycle": events_by_record.get(record.pk, []),
                "signatures": [
                    {"signer": _who(s.signer), **_fields(s, skip=("batch_item_pk",))} for s in signed
                ],
                "renewals": renewals_by_record.get(record.pk, []),
                "pdf": pdf and pdf_row and {**pdf, **_fields(pdf_row, skip=("name",))},
                "xml": xml,
                "public_index": entry and _fields(entry, skip=("personal_id_digest",)),
                "forwarding_to_the_ministry": forwarding_by_version.get(
                    (record.record_id, record.version), []
                ),
            }
        )

    attached_out = []
    for earlier in attached:
        what = {"school": school.code, "record_id": earlier.record_id, "version": earlier.version}
        document = _document(
            zip_out,
            gathered,
            read=_checked(bytes(earlier.xml), earlier.sha256, earlier.record_id),
            path=f"attached/{code}/{safe_name(earlier.record_id)}-v{earlier.version}.xml",
            kind="attached_xml",
            school=school,
            record=None,
            what=what,
        )
        attached_out.append({**_fields(earlier), "attached_by": _who(earlier.attached_by), "xml": document})

    for copy in copies:
        gathered.events.append(
            _event(
                copy.at,
                EVENT_COPY,
                _who(copy.actor),
                school.code,
                f"{copy.record_id} v{copy.version} ({copy.get_format_display()}) sha256 {copy.sha256}",
            )
        )
    for verification in verifications:
        gathered.events.append(
            _event(
                verification.at,
                EVENT_VERIFICATION,
                _("A member of the public (anonymous)"),
                school.code,
                f"{verification.record_id} v{verification.version}: {verification.get_method_display()}, "
                f"{verification.get_outcome_display()}",
            )
        )
    for audited in audit:
        kind = EVENT_SCHOOL_DATA_OPENED if audited.action == AuditAction.SCHOOL_DATA_VIEWED else EVENT_AUDIT
        gathered.events.append(
            _event(
                audited.at,
                kind,
                _who(audited.actor),
                school.code,
                f"{audited.get_action_display()}: {audited.summary}",
            )
        )

    return {
        "school": {"code": school.code, "name": school.name},
        "student": _fields(student),
        "enrolments": [
            {
                "school_year": e.school_class.school_year.code,
                "class": e.school_class.name,
                "grade": e.school_class.grade,
                "homeroom_teacher": _who(e.school_class.homeroom_teacher),
                **_fields(e),
                "assessments": by_enrolment[e.pk],
                "year_result": _fields(years[e.pk]) if e.pk in years else None,
            }
            for e in enrolments
        ],
        "assessment_history": [
            {
                "subject": change.subject.name if change.subject else "",
                "by": _who(change.actor),
                **_fields(change),
            }
            for change in history
        ],
        "year_records": year_records,
        "attached_records": attached_out,
    }


def _pages_of(student_pk: int, enrolments: list[Enrolment], record_pks: list[int]) -> str:
    """A PostgreSQL regular expression matching the school pages that show this student's data:
    their book, this export's page, their classes' grade books and records, their record versions.
    Pages opened under a data grant are logged with their path (portal.middleware), one row per
    page: matching the path keeps the access log to what showed this student, not the whole school."""
    paths = [f"/hoc-ba/{student_pk}/", f"/du-lieu-ca-nhan/{student_pk}/"]
    for class_id in sorted({e.school_class_id for e in enrolments}):
        paths += [f"/so-diem/lop/{class_id}/", f"/so-diem/ho-so/lop/{class_id}/", f"/so-diem/{class_id}/"]
    paths += [f"/so-diem/ho-so/{pk}/" for pk in record_pks]
    return "(" + "|".join(paths) + ")"  # letters, digits, '-' and '/': nothing to escape


def _person_events(*, digest: str, record_ids: set[str], students: list[str]) -> list[dict[str, Any]]:
    """The partner API's calls about the person, and the earlier exports of their data."""
    found: list[dict[str, Any]] = []
    calls = Q(record_id__in=record_ids) if record_ids else Q(pk__in=[])
    if digest:
        calls |= Q(personal_id_digest=digest)
    for call in ApiCall.objects.filter(calls).select_related("client").order_by("at", "pk"):
        found.append(
            _event(
                call.at,
                EVENT_PARTNER_API,
                call.client.name if call.client else _("Unknown partner"),
                "",
                f"{call.method} {call.path} -> {call.status_code}"
                + (f" ({call.purpose})" if call.purpose else ""),
            )
        )
    earlier = Q(students__overlap=students)
    if digest:
        earlier |= Q(personal_id_digest=digest)
    for export in PersonalDataExport.objects.filter(earlier).select_related("actor", "school").order_by("at"):
        found.append(
            _event(
                export.at,
                EVENT_EXPORT,
                _who(export.actor),
                export.school.code if export.school else "",
                f"{export.get_channel_display()}: {export.reason} "
                f"(ref {export.reference}, sha256 {export.sha256})",
            )
        )
    return found


def _access_log_csv(events: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["at", "event", "who", "school", "detail"])
    for event in events:
        # A value a spreadsheet would evaluate is written as text (docs/security.md: exports).
        writer.writerow(
            ["'" + str(v) if str(v)[:1] in ("=", "+", "-", "@", "\t", "\r") else v for v in event.values()]
        )
    return ("\ufeff" + text.getvalue()).encode("utf-8")  # the BOM: spreadsheets open it as UTF-8


def _readme(*, reference: uuid.UUID, made_at: dt.datetime, actor: User, reason: str, schools: str) -> str:
    return f"""DỮ LIỆU CÁ NHÂN CỦA HỌC SINH — CỔNG HỌC BẠ SỐ
(A student's personal data from the digital transcript portal; English below.)

Mã lần xuất: {reference}
Lập lúc: {timezone.localtime(made_at).isoformat()}
Người lập: {_who(actor)}
Số văn bản yêu cầu / lý do: {reason}
Trường: {schools}

Tệp nén này được lập theo yêu cầu của chủ thể dữ liệu (học sinh, hoặc cha mẹ, người giám hộ của
học sinh chưa thành niên), theo Luật Bảo vệ dữ liệu cá nhân 2025 (quyền được truy cập và nhận
dữ liệu cá nhân của mình). Lần xuất này đã được ghi nhật ký: ai lập, lúc nào, vì sao.

- data.json: toàn bộ dữ liệu (UTF-8): thông tin nhân thân theo từng trường; mọi lần vào lớp;
  mọi điểm, mức đánh giá, nhận xét và lịch sử từng lần sửa (ai sửa, lúc nào, giá trị cũ và mới);
  kết quả cả năm; mọi phiên bản học bạ năm học với trạng thái, các bước xử lý, các chữ ký số,
  việc gửi lên Kho học bạ số của Bộ; danh sách mọi tệp kèm mã SHA-256 ("files") và các tài liệu
  không đọc được ("unavailable", nếu có, với lý do).
- access_log.csv: nhật ký truy cập: ai đã sao bản học bạ, ai đã xác thực học bạ trên trang tra
  cứu, hệ thống đối tác nào đã hỏi về học sinh, khi nào học bạ được gửi lên Bộ, ai đã mở dữ liệu
  của trường theo quyền được cấp, và các lần xuất dữ liệu cá nhân trước đây.
- records/<mã trường>/<mã học bạ>-v<phiên bản>.pdf: bản PDF của học bạ năm học (mẫu của Bộ).
- records/<mã trường>/<mã học bạ>-v<phiên bản>.xml: tệp XML của học bạ (đã ký số nếu đã ký).
- attached/<mã trường>/...xml: học bạ các năm trước do trường khác cấp, đã được gắn vào hồ sơ.

Mỗi tệp PDF và XML đã được đối chiếu mã SHA-256 với cơ sở dữ liệu trước khi đưa vào tệp nén.
Có thể kiểm tra chữ ký của học bạ trên trang tra cứu công khai của cổng (/tra-cuu/).

---
This ZIP was made at the request of the data subject (the student, or the parent or guardian of a
minor) under the Personal Data Protection Law 2025. The export itself is logged (who, when, why).
data.json holds every piece of the student's data the portal keeps (identity per school,
enrolments, every assessment and the history of each change, year results, every year record
version with its lifecycle, signatures and forwarding to the Ministry), the list of files with
their SHA-256 ("files") and any document that could not be read ("unavailable", with why).
access_log.csv lists who copied, verified, forwarded, asked about (partner systems) or exported
this person's data, and when. records/ holds each year record version's PDF and XML, checked
against the SHA-256 the database records; attached/ holds earlier records from other schools.
"""


def student_data_export(
    *,
    actor: User,
    subjects: list[ExportSubject],
    reason: str,
    channel: str,
    out: IO[bytes],
    school: School | None = None,
) -> PersonalDataExport:
    """Write the ZIP of the person's data in `subjects` into `out` and log the export.

    `channel` PAGE: the school's page, `school` given, every subject of that school (the principal,
    portal.permissions.can_export_personal_data); COMMAND: across schools (the Department's data
    administrators). Raises PermissionDenied, or ValidationError (a reason that is not one line of
    1-300 characters; no student). The log row and the copy-log rows are written in one
    transaction, once the ZIP is whole; on any failure nothing is logged and `out` is garbage.
    """
    text = export_reason_clean(reason)
    if not subjects:
        raise ValidationError(_("No student with this personal ID number was found."), code="not_found")
    if channel == PersonalDataExportChannel.PAGE:
        if school is None or any(s.school.pk != school.pk for s in subjects):
            raise PermissionDenied
        if not can_export_personal_data(actor, school):
            raise PermissionDenied
    elif channel == PersonalDataExportChannel.COMMAND:
        if not can_export_personal_data_across_schools(actor):
            raise PermissionDenied(
                _("Only a department administrator with a data grant exports a person's data across schools.")
            )
    else:
        raise ValueError(f"Unknown channel {channel!r}")

    department = Department.objects.first()
    reference = uuid.uuid4()
    made_at = timezone.now()
    zip_out = _Zip(out)
    try:
        return _export(
            zip_out,
            actor=actor,
            subjects=subjects,
            reason=text,
            channel=channel,
            school=school,
            department_name=department.name if department else "",
            reference=reference,
            made_at=made_at,
        )
    except BaseException:
        zip_out.abandon()
        raise


def _export(
    zip_out: _Zip,
    *,
    actor: User,
    subjects: list[ExportSubject],
    reason: str,
    channel: str,
    school: School | None,
    department_name: str,
    reference: uuid.UUID,
    made_at: dt.datetime,
) -> PersonalDataExport:
    """student_data_export's work, in one transaction: the ZIP, then the rows that log it."""
    text = reason
    with transaction.atomic():
        gathered = _Gathered()
        zip_out.add(
            README,
            _readme(
                reference=reference,
                made_at=made_at,
                actor=actor,
                reason=text,
                schools=", ".join(sorted({f"{s.school.code} ({s.school.name})" for s in subjects})),
            ).encode("utf-8"),
            "readme",
        )
        parts = [_school_part(subject, zip_out, gathered) for subject in subjects]
        personal_ids = {p["student"].get("personal_id") for p in parts} - {None, ""}
        digest = personal_id_digest(next(iter(personal_ids))) if len(personal_ids) == 1 else ""
        gathered.events.extend(
            _person_events(digest=digest, record_ids=gathered.record_ids, students=gathered.students)
        )
        gathered.events.sort(key=lambda e: (e["at"] or "", e["event"]))
        zip_out.add(ACCESS_LOG, _access_log_csv(gathered.events), "access_log")
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "export": {
                "reference": str(reference),
                "made_at": _plain(made_at),
                "made_by": _who(actor),
                "request_reference_or_reason": text,
                "made_from": str(PersonalDataExportChannel(channel).label),
                "portal": {"name": department_name, "url": settings.HOCBA_PUBLIC_URL},
            },
            "schools": parts,
            "access_log": gathered.events,
            "files": list(zip_out.files),
            "unavailable": gathered.unavailable,
        }
        zip_out.add(DATA, json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"), "data")
        zip_out.close()
        for copy_school, record, content, fmt in gathered.copies:
            year_record_copy_log(actor=actor, school=copy_school, record=record, data=content, fmt=fmt)
        return PersonalDataExport.objects.create(
            reference=reference,
            at=made_at,
            actor=actor,
            channel=channel,
            reason=text,
            school=school,
            personal_id_digest=digest,
            students=gathered.students,
            sha256=zip_out.counted.digest.hexdigest(),
            size=zip_out.counted.size,
            files=len(zip_out.files),
        )
