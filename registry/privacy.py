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
import io
import json
import unicodedata
import uuid
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.models import Department, School, User
from portal.permissions import can_export_personal_data, can_export_personal_data_across_schools
from portal.selectors import personal_id_digest
from transcripts.records.services import year_record_copy_log

from .models_privacy import REASON_MAX_LENGTH, PersonalDataExport, PersonalDataExportChannel
from .privacy_gather import (
    ACCESS_LOG,
    DATA,
    FORMAT,
    FORMAT_VERSION,
    README,
    ExportSubject,
    ExportZip,
    Gathered,
    person_events,
    plain,
    school_part,
    who,
)


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
Người lập: {who(actor)}
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
    zip_out = ExportZip(out)
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
    zip_out: ExportZip,
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
        gathered = Gathered()
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
        parts = [school_part(subject, zip_out, gathered) for subject in subjects]
        personal_ids = {p["student"].get("personal_id") for p in parts} - {None, ""}
        digest = personal_id_digest(next(iter(personal_ids))) if len(personal_ids) == 1 else ""
        gathered.events.extend(
            person_events(digest=digest, record_ids=gathered.record_ids, students=gathered.students)
        )
        gathered.events.sort(key=lambda e: (e["at"] or "", e["event"]))
        zip_out.add(ACCESS_LOG, _access_log_csv(gathered.events), "access_log")
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "export": {
                "reference": str(reference),
                "made_at": plain(made_at),
                "made_by": who(actor),
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
