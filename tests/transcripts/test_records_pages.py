"""The year records' pages of a school: who opens them, the lifecycle buttons, the logged downloads."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import CopyLog
from schools.models import Enrolment
from tests.conftest import student_make
from tests.transcripts import test_year_close, test_year_records
from transcripts.models import YearRecord, YearRecordEvent, YearRecordPdf, YearRecordStatus
from transcripts.records.documents import record_document_name
from transcripts.records.storage import document_put

S = YearRecordStatus
# Fixtures shared with the year records' tests: an approved 8A (two students promoted, two waiting
# for August), and the two promoted students' records.
complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records

FAKE_PDF = b"%PDF-1.7\n% a stored rendering, served as it is\n%%EOF\n"


def records_url(school, suffix: str) -> str:
    return f"/truong/{school.code}/so-diem/ho-so/{suffix}"


def class_url(school, school_class, suffix: str = "") -> str:
    return records_url(school, f"lop/{school_class.pk}/{suffix}")


def record_url(school, record, suffix: str) -> str:
    return records_url(school, f"{record.pk}/{suffix}")


def fresh(school, record) -> YearRecord:
    """The record as stored now (a request leaves the connection in the public schema)."""
    connection.set_tenant(school)
    return YearRecord.objects.get(pk=record.pk)


def store_pdf(record, data: bytes = FAKE_PDF) -> YearRecordPdf:
    """A PDF stored as the renderer stores one: its bytes in the documents storage, its row here."""
    sha256 = hashlib.sha256(data).hexdigest()
    stored = document_put(record_document_name(record, sha256=sha256, kind="pdf"), data)
    return YearRecordPdf.objects.create(
        record=record, name=stored.name, size=stored.size, sha256=sha256, renderer="test"
    )


def page_messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


# Who opens what -----------------------------------------------------------------------------

MATRIX = [
    ("homeroom_teacher", 200),
    ("principal", 200),
    ("vice_principal", 200),
    ("school_admin", 200),
    ("department_officer", 200),  # a supervisor under a data grant
    ("subject_teacher", 403),
    ("teacher_of_another_school", 404),
]


@pytest.mark.parametrize(("persona_name", "status"), MATRIX)
def test_the_class_records_page_matrix(client_as, persona, school, records, persona_name, status):
    school_class = records[0].enrolment.school_class
    response = client_as(persona(persona_name)).get(class_url(school, school_class))
    assert response.status_code == status
    if status == 200:
        content = response.content.decode()
        for record in records:
            assert record.record_id in content
        assert "Đủ dữ liệu" in content  # the status, in Vietnamese


@pytest.mark.parametrize(("persona_name", "status"), MATRIX)
def test_the_downloads_matrix(client_as, persona, school, records, persona_name, status):
    store_pdf(records[0])
    client = client_as(persona(persona_name))
    for suffix in ("xml/", "pdf/"):
        assert client.get(record_url(school, records[0], suffix)).status_code == status
    assert CopyLog.objects.filter(record_id=records[0].record_id).count() == (2 if status == 200 else 0)


def test_a_refusal_answers_json_to_a_script(client_as, subject_teacher, school, records):
    response = client_as(subject_teacher).post(
        record_url(school, records[0], "xac-nhan/"), HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 403 and response.json()["error"]
    assert fresh(school, records[0]).status == S.DATA_COMPLETE


# The lifecycle through the pages ------------------------------------------------------------


def test_records_cannot_be_created_before_the_year_is_approved(
    client_as, homeroom_teacher, school, secondary_class
):
    response = client_as(homeroom_teacher).post(class_url(school, secondary_class, "tao/"), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].endswith(class_url(school, secondary_class))
    assert page_messages(response)  # the service's reason, on the page
    connection.set_tenant(school)
    assert not YearRecord.objects.exists()


def test_create_confirm_correct_approve_revoke_through_the_pages(
    client_as,
    homeroom_teacher,
    principal,
    subject_teacher,
    school,
    approved_class,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    from transcripts import tasks

    school_class, enrolments = approved_class
    sent = []
    monkeypatch.setattr(
        tasks.year_record_pdf_render, "apply_async", lambda args, headers, **_: sent.append((args, headers))
    )

    # Create: not a subject teacher's step; the homeroom teacher's. No PDF yet: it is made at issue.
    assert client_as(subject_teacher).post(class_url(school, school_class, "tao/")).status_code == 403
    teacher = client_as(homeroom_teacher)
    with django_capture_on_commit_callbacks(execute=True):
        response = teacher.post(class_url(school, school_class, "tao/"), follow=True)
    assert response.status_code == 200
    text = page_messages(response)
    connection.set_tenant(school)
    for waiting in enrolments[:2]:  # decided in August: named as waiting
        assert waiting.student.full_name in text
    connection.set_tenant(school)
    created = list(YearRecord.objects.filter(enrolment__school_class=school_class).order_by("pk"))
    assert len(created) == 2
    assert sent == []
    names = [e.student.full_name for e in enrolments[:2]]
    page = teacher.get(class_url(school, school_class))
    assert [row.enrolment.student.full_name for row in page.context["rows"] if row.waiting] == names
    first, second = created

    # Confirm: the principal does not confirm for the homeroom teacher.
    assert client_as(principal).post(record_url(school, first, "xac-nhan/")).status_code == 403
    assert client_as(subject_teacher).post(class_url(school, school_class, "xac-nhan/")).status_code == 403
    teacher = client_as(homeroom_teacher)
    assert teacher.post(record_url(school, first, "xac-nhan/")).status_code == 302
    assert fresh(school, first).status == S.CONFIRMED
    assert teacher.post(class_url(school, school_class, "xac-nhan/")).status_code == 302
    assert fresh(school, second).status == S.CONFIRMED
    # Confirming twice is a message on the page, not an error.
    again = teacher.post(record_url(school, first, "xac-nhan/"), follow=True)
    assert again.status_code == 200 and page_messages(again)

    # Ask for a correction: a reason is needed; a subject teacher may not.
    refused = client_as(subject_teacher).post(record_url(school, first, "dinh-chinh/"), {"reason": "Sai"})
    assert refused.status_code == 403
    teacher = client_as(homeroom_teacher)
    empty = teacher.post(record_url(school, first, "dinh-chinh/"), {"reason": "  "}, follow=True)
    assert page_messages(empty)
    connection.set_tenant(school)
    assert not YearRecord.objects.filter(record_id=first.record_id, version=2).exists()
    teacher.post(record_url(school, first, "dinh-chinh/"), {"reason": "Sai điểm Toán"})
    connection.set_tenant(school)
    correction = YearRecord.objects.get(record_id=first.record_id, version=2)
    assert (correction.status, correction.correction_reason) == (S.DRAFT, "Sai điểm Toán")
    page = teacher.get(class_url(school, school_class))
    row = next(r for r in page.context["rows"] if r.current and r.current.pk == first.pk)
    assert row.pending.pk == correction.pk

    # Approve the correction: the principal's, not the homeroom teacher's.
    assert (
        client_as(homeroom_teacher).post(record_url(school, correction, "duyet-dinh-chinh/")).status_code
        == 403
    )
    assert fresh(school, correction).status == S.DRAFT
    boss = client_as(principal)
    assert boss.post(record_url(school, correction, "duyet-dinh-chinh/")).status_code == 302
    assert (fresh(school, first).status, fresh(school, correction).status) == (S.SUPERSEDED, S.DATA_COMPLETE)
    page = boss.get(class_url(school, school_class))
    row = next(r for r in page.context["rows"] if r.current and r.current.pk == correction.pk)
    assert [r.pk for r in row.older] == [first.pk]

    # Revoke: the principal's, with a reason.
    refused = client_as(homeroom_teacher).post(record_url(school, second, "thu-hoi/"), {"reason": "Nhầm"})
    assert refused.status_code == 403
    boss = client_as(principal)
    empty = boss.post(record_url(school, second, "thu-hoi/"), {"reason": ""}, follow=True)
    assert page_messages(empty) and fresh(school, second).status == S.CONFIRMED
    boss.post(record_url(school, second, "thu-hoi/"), {"reason": "Nhầm học sinh"})
    assert fresh(school, second).status == S.REVOKED
    assert YearRecordEvent.objects.filter(
        record_id=second.pk, to_status=S.REVOKED, note="Nhầm học sinh"
    ).exists()


# Downloads ----------------------------------------------------------------------------------


def test_the_xml_download_is_the_stored_bytes_and_is_logged(client_as, homeroom_teacher, school, records):
    record = records[0]
    stored = bytes(fresh(school, record).xml)
    response = client_as(homeroom_teacher).get(record_url(school, record, "xml/"))

    assert response.status_code == 200
    assert response.content == stored
    assert response["Content-Type"] == "application/xml"
    assert f'filename="{record.record_id}-v1.xml"' in response["Content-Disposition"]
    log = CopyLog.objects.get(record_id=record.record_id)
    assert (log.actor, log.school, log.version, log.format) == (homeroom_teacher, school, 1, "xml")
    assert log.sha256 == hashlib.sha256(stored).hexdigest()


def test_the_pdf_download_is_the_stored_bytes_and_is_logged(client_as, principal, school, records):
    record = records[0]
    client = client_as(principal)
    pending = client.get(record_url(school, record, "pdf/"))
    assert pending.status_code == 404
    assert record.record_id in pending.content.decode()
    assert not CopyLog.objects.exists()

    connection.set_tenant(school)
    store_pdf(record)
    response = client.get(record_url(school, record, "pdf/"))
    assert response.status_code == 200 and response.content == FAKE_PDF
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{record.record_id}-v1.pdf"' in response["Content-Disposition"]
    client.get(record_url(school, record, "pdf/"))
    logs = list(CopyLog.objects.filter(record_id=record.record_id, format="pdf"))
    assert len(logs) == 2  # every copy, not every record
    assert {log.sha256 for log in logs} == {hashlib.sha256(FAKE_PDF).hexdigest()}
    assert {log.actor_id for log in logs} == {principal.pk}


def test_the_log_of_copies_is_append_only(client_as, homeroom_teacher, school, records):
    from django.db import DatabaseError, transaction

    client_as(homeroom_teacher).get(record_url(school, records[0], "xml/"))
    log = CopyLog.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CopyLog.objects.filter(pk=log.pk).update(sha256="0" * 64)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CopyLog.objects.filter(pk=log.pk).delete()


def test_an_unknown_record_is_404(client_as, principal, school, records):
    assert client_as(principal).get(records_url(school, "999999/xml/")).status_code == 404


# Cost ---------------------------------------------------------------------------------------


def _give_records(school_class, template: YearRecord) -> None:
    """A version-1 record (a copy of the template's bytes) for every student without one."""
    have = set(YearRecord.objects.values_list("enrolment_id", flat=True))
    for enrolment in Enrolment.objects.filter(school_class=school_class).exclude(pk__in=have):
        record = YearRecord.objects.create(
            enrolment=enrolment,
            record_id=f"test.{enrolment.pk}",
            version=1,
            status=S.DATA_COMPLETE,
            xml=bytes(template.xml),
            sha256=template.sha256,
            created_by=template.created_by,
        )
        store_pdf(record)


def test_the_class_page_costs_the_same_queries_for_4_and_8_students(
    client_as, homeroom_teacher, school, records
):
    school_class = records[0].enrolment.school_class
    connection.set_tenant(school)
    template = YearRecord.objects.get(pk=records[0].pk)
    _give_records(school_class, template)
    client = client_as(homeroom_teacher)
    client.get(class_url(school, school_class))
    with CaptureQueriesContext(connection) as at_4:
        page = client.get(class_url(school, school_class))
    assert len(page.context["rows"]) == 4

    connection.set_tenant(school)
    # The fixture's class is approved, so the services and the database refuse new enrolments
    # (the closed book): grow it by hand with the triggers off for this transaction only; what is
    # measured is the page.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    start = Enrolment.objects.filter(school_class=school_class).count()
    for i in range(start, start + 4):
        student = student_make(f"X{school_class.pk}-{i}", f"Học Sinh {i}", 1, dt.date(2012, 1, 1))
        Enrolment.objects.create(
            student=student, school_class=school_class, enrolled_on=dt.date(2025, 9, 5), number=i + 1
        )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    _give_records(school_class, template)
    with CaptureQueriesContext(connection) as at_8:
        page = client.get(class_url(school, school_class))
    assert len(page.context["rows"]) == 8
    assert all(row.current for row in page.context["rows"])

    assert len(at_4) == len(at_8), [q["sql"][:80] for q in at_8]
    # eight statements (the eighth: the guides the user dismissed, portal.templatetags.guides),
    # after one SET search_path at most (docs/architecture.md)
    assert len(at_4) <= 9, [q["sql"][:120] for q in at_4]
