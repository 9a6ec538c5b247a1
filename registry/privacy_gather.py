"""The gathering half of a person's data export (registry.privacy): each school's part (identity,
assessments and their history, records, signatures, forwarding), the documents read and checked
into the ZIP, and the person's access events across the province's logs."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import io
import re
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import AuditEntry, CopyLog, IssuedRecord, School, User, VerificationLog
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

from .models import ApiCall, OutboxMessage
from .models_privacy import PersonalDataExport

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


def plain(value: Any) -> Any:
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
        out[f.name] = plain(value)
        if f.choices and value not in (None, ""):
            out[f"{f.name}_label"] = str(dict(f.flatchoices).get(value, value))
    return out


def who(user: User | None) -> str:
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


class ExportZip:
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
class Gathered:
    """What one export collects: the schools' parts, the access log, the documents handed over."""

    schools: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[dict[str, Any]] = field(default_factory=list)
    record_ids: set[str] = field(default_factory=set)
    students: list[str] = field(default_factory=list)
    copies: list[tuple[School, YearRecord, bytes, str]] = field(default_factory=list)


def _event(at: dt.datetime | None, kind: str, who: str, school: str, detail: str) -> dict[str, Any]:
    return {"at": plain(at), "event": kind, "who": who, "school": school, "detail": detail}


def _document(
    zip_out: ExportZip,
    gathered: Gathered,
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


def school_part(subject: ExportSubject, zip_out: ExportZip, gathered: Gathered) -> dict[str, Any]:
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
        events_by_record.setdefault(event.record_id, []).append({"by": who(event.actor), **_fields(event)})
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
                "created_by": who(record.created_by),
                "lifecycle": events_by_record.get(record.pk, []),
                "signatures": [
                    {"signer": who(s.signer), **_fields(s, skip=("batch_item_pk",))} for s in signed
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
        attached_out.append({**_fields(earlier), "attached_by": who(earlier.attached_by), "xml": document})

    for copy in copies:
        gathered.events.append(
            _event(
                copy.at,
                EVENT_COPY,
                who(copy.actor),
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
                who(audited.actor),
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
                "homeroom_teacher": who(e.school_class.homeroom_teacher),
                **_fields(e),
                "assessments": by_enrolment[e.pk],
                "year_result": _fields(years[e.pk]) if e.pk in years else None,
            }
            for e in enrolments
        ],
        "assessment_history": [
            {
                "subject": change.subject.name if change.subject else "",
                "by": who(change.actor),
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


def person_events(*, digest: str, record_ids: set[str], students: list[str]) -> list[dict[str, Any]]:
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
                who(export.actor),
                export.school.code if export.school else "",
                f"{export.get_channel_display()}: {export.reason} "
                f"(ref {export.reference}, sha256 {export.sha256})",
            )
        )
    return found
