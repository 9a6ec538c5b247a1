"""A student's personal data exported on request (registry.privacy, PDPL 2025): the ZIP's content
against the database and the documents storage, the log row written with it and only with it, the
access log (the previous export included), the reason's refusals, the query count, and the
Department's command across schools."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.choices import VerificationMethod, VerificationOutcome
from portal.models import CopyLog, IssuedRecord, RoleAssignment, VerificationLog
from portal.selectors import personal_id_digest
from registry.api.choices import PartnerKind
from registry.models import ApiCall, PartnerClient, PersonalDataExport
from registry.privacy import export_reason_clean, student_data_export
from registry.privacy_gather import ExportSubject, export_subjects_by_personal_id
from schools.models import Student, Subject
from tests.signing_kit import issue
from transcripts.models import AssessmentChange, YearRecordPdf
from transcripts.records.pdf import year_record_pdf_render
from transcripts.records.services import year_record_copy_log
from transcripts.records.storage import documents_storage

REASON = "Đơn đề nghị số 12/2026 của phụ huynh"


@pytest.fixture
def issued(homeroom_teacher, principal, school, records):
    """8A's first promoted student: their record issued and its PDF rendered; a score change in
    the history; a copy handed out earlier (by the homeroom teacher)."""
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    year_record_pdf_render(record_id=record.pk)
    connection.set_tenant(school)
    AssessmentChange.objects.create(
        actor=homeroom_teacher,
        enrolment=record.enrolment,
        subject=Subject.objects.get(code="toan"),
        table="transcripts_subjecttermscores",
        row_id=1,
        field="mid",
        old="6.5",
        new="7.0",
    )
    year_record_copy_log(actor=homeroom_teacher, school=school, record=record, data=b"earlier", fmt="pdf")
    student = Student.objects.get(pk=record.enrolment.student_id)
    connection.set_schema_to_public()
    return record, student


def export(actor, school, student, reason=REASON, out=None):
    out = out if out is not None else io.BytesIO()
    row = student_data_export(
        actor=actor,
        subjects=[ExportSubject(school=school, student_id=student.pk)],
        reason=reason,
        channel="page",
        out=out,
        school=school,
    )
    return row, out


def zip_of(out) -> zipfile.ZipFile:
    out.seek(0)
    return zipfile.ZipFile(io.BytesIO(out.read()))


def test_the_zip_holds_the_students_data_documents_and_access_log_and_one_row_logs_it(
    principal, school, issued
):
    record, student = issued
    copies_before = CopyLog.objects.count()
    row, out = export(principal, school, student)
    z = zip_of(out)
    code = school.code
    stem = f"records/{code}/{record.record_id}-v{record.version}"
    assert {"README.txt", "data.json", "access_log.csv", stem + ".pdf", stem + ".xml"} <= set(z.namelist())
    readme = z.read("README.txt").decode("utf-8")
    assert readme.startswith("DỮ LIỆU CÁ NHÂN CỦA HỌC SINH") and str(row.reference) in readme

    data = json.loads(z.read("data.json").decode("utf-8"))
    assert data["export"]["reference"] == str(row.reference)
    assert data["export"]["request_reference_or_reason"] == REASON
    (part,) = data["schools"]
    assert part["school"]["code"] == code
    assert part["student"]["full_name"] == student.full_name
    assert part["student"]["personal_id"] == student.personal_id
    assert part["student"]["sex_label"]
    (enrolment,) = part["enrolments"]
    assert enrolment["class"] == "8A" and enrolment["school_year"] == "2025-2026"
    toan = [s for s in enrolment["assessments"]["subject_terms"] if s["subject"] == "Toán"]
    assert toan and toan[0]["mid"] is not None
    assert enrolment["year_result"]["conduct_year"] == "K"
    (change,) = part["assessment_history"]
    assert (change["old"], change["new"], change["field"]) == ("6.5", "7.0", "mid")
    assert "Ngô Chủ Nhiệm" in change["by"]
    (year_record,) = part["year_records"]
    assert [s["role"] for s in year_record["signatures"]] == ["homeroom_teacher", "principal", "seal"]
    assert year_record["status"] == "issued" and year_record["public_index"]["verification_code"]
    assert "personal_id_digest" not in year_record["public_index"]
    assert [m["kind"] for m in year_record["forwarding_to_the_ministry"]] == ["submit"]

    # The documents: the stored PDF, byte for byte, and each listed file's SHA-256 is its bytes'.
    connection.set_tenant(school)
    stored = YearRecordPdf.objects.get(record=record)
    connection.set_schema_to_public()
    assert hashlib.sha256(z.read(stem + ".pdf")).hexdigest() == stored.sha256 == year_record["pdf"]["sha256"]
    for entry in data["files"]:
        assert hashlib.sha256(z.read(entry["path"])).hexdigest() == entry["sha256"]
    assert data["unavailable"] == []

    # Logged: one row naming this very ZIP, and one copy-log row per record document handed over.
    assert row.sha256 == hashlib.sha256(out.getvalue()).hexdigest() and row.size == len(out.getvalue())
    assert (row.actor, row.school, row.reason, row.channel) == (principal, school, REASON, "page")
    assert row.students == [f"{code}/{student.student_code}"]
    assert row.personal_id_digest == personal_id_digest(student.personal_id)
    assert CopyLog.objects.count() == copies_before + 2
    assert set(
        CopyLog.objects.filter(actor=principal, record_id=record.record_id).values_list("format", flat=True)
    ) == {"pdf", "xml"}

    # The access log: the earlier copy (and the forwarding is in data.json).
    log = z.read("access_log.csv").decode("utf-8-sig")
    assert "copy" in log and "Ngô Chủ Nhiệm" in log


def test_the_export_is_in_the_next_exports_access_log_and_two_submissions_are_two_exports(
    client_as, principal, school, issued
):
    _record, student = issued
    url = f"/truong/{school.code}/du-lieu-ca-nhan/{student.pk}/"
    client = client_as(principal)
    first = client.post(url, {"reason": REASON})
    second = client.post(url, {"reason": REASON})
    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "application/zip" and first["Cache-Control"] == "no-store"
    rows = list(PersonalDataExport.objects.order_by("at", "pk"))
    assert len(rows) == 2 and rows[0].reference != rows[1].reference
    body = b"".join(second.streaming_content)
    assert hashlib.sha256(body).hexdigest() == rows[1].sha256
    log = zipfile.ZipFile(io.BytesIO(body)).read("access_log.csv").decode("utf-8-sig")
    assert str(rows[0].reference) in log and str(rows[1].reference) not in log
    assert "Đặng Hiệu Trưởng" in log


@pytest.mark.parametrize(
    "reason",
    ["", "   ", "x" * 301, "số 12\n=cmd", "số 12\x1b[31m", "số \u202e21 ", "tab\there"],
)
def test_a_hostile_reason_is_refused_in_vietnamese_and_nothing_is_logged(
    client_as, principal, school, reason
):
    connection.set_tenant(school)
    student = Student.objects.get(student_code="CS001")
    connection.set_schema_to_public()
    response = client_as(principal).post(
        f"/truong/{school.code}/du-lieu-ca-nhan/{student.pk}/", {"reason": reason}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert any(phrase in text for phrase in ("số văn bản yêu cầu", "quá dài", "một dòng")), text[-2000:]
    assert not PersonalDataExport.objects.exists()


def test_the_reason_is_kept_stripped_and_at_most_300_characters():
    assert export_reason_clean("  Công văn 5/2026  ") == "Công văn 5/2026"
    assert len(export_reason_clean("ă" * 300)) == 300
    with pytest.raises(ValidationError):
        export_reason_clean("ă" * 301)


class _Broken(io.BytesIO):
    def write(self, data):
        if self.tell() > 2000:
            raise OSError("disk full")
        return super().write(data)


def test_a_failed_export_leaves_no_log_row_and_no_copy_row(principal, school, issued):
    _record, student = issued
    copies = CopyLog.objects.count()
    with pytest.raises(OSError):
        export(principal, school, student, out=_Broken())
    assert not PersonalDataExport.objects.exists()
    assert CopyLog.objects.count() == copies


def test_the_queries_do_not_grow_with_years_subjects_or_records(principal, school, issued):
    """A fixed number of SELECTs per school, each table read once: none per year, subject, version or
    document (a student whose record is not issued reads no more tables than the one with the issued
    record, its PDF, its signatures and a history)."""
    _record, student = issued
    connection.set_tenant(school)
    bare = Student.objects.get(student_code="CS004")
    connection.set_schema_to_public()

    def selects(who):
        with CaptureQueriesContext(connection) as queries:
            export(principal, school, who)
        return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]

    full, empty = selects(student), selects(bare)
    tables = [sql.split(" FROM ", 1)[1].split()[0] for sql in full]
    assert len(tables) == len(set(tables)), sorted(tables)
    assert len(empty) <= len(full) <= 25


@pytest.fixture
def moved(school, other_school):
    """The same person, later a student of the other school (same personal ID number)."""
    connection.set_tenant(school)
    student = Student.objects.get(student_code="CS001")
    connection.set_tenant(other_school)
    there = Student.objects.create(
        student_code="B-0001",
        personal_id=student.personal_id,
        full_name=student.full_name,
        sex=student.sex,
        date_of_birth=student.date_of_birth,
    )
    connection.set_schema_to_public()
    return student, there


def test_the_command_exports_every_schools_record_of_the_person(
    department_admin, school, other_school, moved, tmp_path
):
    student, there = moved
    RoleAssignment.objects.filter(user=department_admin).update(data_access=True)
    out = tmp_path / "du-lieu.zip"
    stdout = io.StringIO()
    call_command(
        "student_data_export",
        "--personal-id",
        student.personal_id,
        "--reason",
        "Công văn 7/2026",
        "--actor",
        department_admin.username,
        "-o",
        str(out),
        stdout=stdout,
    )
    data = json.loads(zipfile.ZipFile(out).read("data.json"))
    assert sorted(p["school"]["code"] for p in data["schools"]) == sorted([school.code, other_school.code])
    row = PersonalDataExport.objects.get()
    assert (row.channel, row.school, row.actor) == ("command", None, department_admin)
    assert sorted(row.students) == sorted(
        [f"{school.code}/{student.student_code}", f"{other_school.code}/{there.student_code}"]
    )
    assert row.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert str(row.reference) in stdout.getvalue()


def test_the_command_refuses_without_a_data_grant_and_an_unknown_number(department_admin, moved, tmp_path):
    student, _there = moved
    out = tmp_path / "x.zip"
    args = ["--reason", "Công văn 7/2026", "--actor", department_admin.username, "-o", str(out)]
    with pytest.raises(CommandError):
        call_command("student_data_export", "--personal-id", student.personal_id, *args)
    RoleAssignment.objects.filter(user=department_admin).update(data_access=True)
    with pytest.raises(CommandError):
        call_command("student_data_export", "--personal-id", "999999999999", *args)
    with pytest.raises(CommandError):
        call_command("student_data_export", "--personal-id", "12345", *args)
    assert not PersonalDataExport.objects.exists() and not out.exists()


def test_finding_by_personal_id_walks_every_school(school, other_school, moved):
    student, there = moved
    found = export_subjects_by_personal_id(student.personal_id)
    assert sorted((s.school.code, s.student_id) for s in found) == sorted(
        [(school.code, student.pk), (other_school.code, there.pk)]
    )


def test_the_log_is_append_only(principal, school, moved):
    from django.db import DatabaseError, transaction

    student, _there = moved
    row, _out = export(principal, school, student)
    with pytest.raises(DatabaseError), transaction.atomic():
        PersonalDataExport.objects.filter(pk=row.pk).update(reason="changed")
    with pytest.raises(DatabaseError), transaction.atomic():
        PersonalDataExport.objects.filter(pk=row.pk).delete()


def test_a_document_changed_in_the_store_is_not_handed_over_and_the_zip_says_why(principal, school, issued):
    record, student = issued
    connection.set_tenant(school)
    stored = YearRecordPdf.objects.get(record=record)
    connection.set_schema_to_public()
    Path(documents_storage().path(stored.name)).write_bytes(b"%PDF-1.7\n% forged\n%%EOF\n")

    row, out = export(principal, school, student)
    z = zip_of(out)
    assert not any(name.endswith(".pdf") for name in z.namelist())
    assert all(b"forged" not in z.read(name) for name in z.namelist())
    data = json.loads(z.read("data.json"))
    assert data["unavailable"] == [
        {
            "school": school.code,
            "record_id": record.record_id,
            "version": record.version,
            "kind": "pdf",
            "reason": "tampered",
        }
    ]
    assert data["schools"][0]["year_records"][0]["pdf"] is None
    # Only what was handed over is in the copy log: the XML, not the PDF.
    assert list(
        CopyLog.objects.filter(actor=principal, record_id=record.record_id).values_list("format", flat=True)
    ) == ["xml"]
    assert row.files == len(data["files"]) + 1  # data.json lists every file but itself


def test_a_verification_on_the_public_page_is_in_the_access_log(principal, school, issued):
    record, student = issued
    entry = IssuedRecord.objects.get(record_id=record.record_id, version=record.version)
    VerificationLog.objects.create(
        method=VerificationMethod.QR,
        record_id=record.record_id,
        version=record.version,
        outcome=VerificationOutcome.FOUND,
        issued_record=entry,
    )
    _row, out = export(principal, school, student)
    data = json.loads(zip_of(out).read("data.json"))
    (verification,) = [e for e in data["access_log"] if e["event"] == "verification"]
    assert record.record_id in verification["detail"]
    assert [e["event"] for e in data["access_log"]].count("copy") == 1  # the earlier copy


def test_pages_of_the_student_opened_under_a_data_grant_are_in_the_access_log_and_others_are_not(
    client_as, division_officer, principal, school, issued
):
    _record, student = issued
    RoleAssignment.objects.filter(user=division_officer).update(data_access=True)
    connection.set_tenant(school)
    other = Student.objects.exclude(pk=student.pk).get(student_code__in=["CS001", "CS003"])
    connection.set_schema_to_public()
    client = client_as(division_officer)
    assert client.get(f"/truong/{school.code}/hoc-ba/{student.pk}/").status_code == 200
    assert client.get(f"/truong/{school.code}/hoc-ba/{other.pk}/").status_code == 200

    _row, out = export(principal, school, student)
    data = json.loads(zip_of(out).read("data.json"))
    opened = [e for e in data["access_log"] if e["event"] == "school_data_opened"]
    assert len(opened) == 1 and f"/hoc-ba/{student.pk}/" in opened[0]["detail"]
    assert "Phạm Chuyên Viên" in opened[0]["who"]


def test_partner_api_calls_about_the_person_are_in_the_access_log_and_others_are_not(
    principal, school, issued
):
    _record, student = issued
    client = PartnerClient.objects.create(name="Cổng tuyển sinh tỉnh", kind=PartnerKind.CITIZEN_APP)
    about = dict(client=client, method="GET", status_code=200, duration_ms=3)
    ApiCall.objects.create(
        path="/api/v1/students/", personal_id_digest=personal_id_digest(student.personal_id), **about
    )
    ApiCall.objects.create(
        path="/api/v1/students/", personal_id_digest=personal_id_digest("010299999999"), **about
    )
    _row, out = export(principal, school, student)
    data = json.loads(zip_of(out).read("data.json"))
    calls = [e for e in data["access_log"] if e["event"] == "partner_api"]
    assert [c["who"] for c in calls] == ["Cổng tuyển sinh tỉnh"]
