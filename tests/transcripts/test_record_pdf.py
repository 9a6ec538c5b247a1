"""The year record's PDF: rendered once from the stored XML, stored with its SHA-256, by a Celery task.

The last test starts a real Celery worker (a subprocess on the test database and Redis, on a queue
of its own) and lets it render a record committed for it, so the school's schema really travels
with the task (tenant-schemas-celery's header), as it does in production.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from portal.models import IssuedRecord, School, User
from tests.conftest import SCHOOLS, student_make
from tests.signing_kit import issue
from tests.transcripts.test_document import secondary_record
from tests.transcripts.test_pdf import poppler
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- a fixture used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401 -- fixtures
from tests.worker import Worker
from transcripts import tasks
from transcripts.document import year_record_xml
from transcripts.models import YearRecord, YearRecordPdf, YearRecordStatus
from transcripts.records import pdf as record_pdf
from transcripts.records.pdf import (
    verify_url_for,
    year_record_pdf_render,
    year_record_pdfs_render,
)
from transcripts.records.services import year_record_document

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def class_records(records, homeroom_teacher, principal, school):  # noqa: F811 -- imported above
    """The two promoted students' records of 8A, issued (signed and sealed: the PDF is made then).
    Uncommitted: the test's transaction rolls back."""
    return [issue(r, homeroom_teacher=homeroom_teacher, principal=principal, school=school) for r in records]


@pytest.fixture
def renders(monkeypatch):
    """Counts the renderings the service makes (the real renderer still runs)."""
    calls = []
    real = record_pdf.year_record_pdf

    def counting(document, *, xml, verify_url, verification_code=""):
        calls.append((document.record_id, verify_url))
        return real(document, xml=xml, verify_url=verify_url, verification_code=verification_code)

    monkeypatch.setattr(record_pdf, "year_record_pdf", counting)
    return calls


def test_the_pdf_is_stored_with_its_sha256_and_the_renderer(class_records, renders, settings):
    settings.HOCBA_PUBLIC_URL = "https://hocba.example.vn/"
    record = class_records[0]

    stored = year_record_pdf_render(record_id=record.pk)

    pdf = bytes(YearRecordPdf.objects.get(record=record).pdf)
    assert pdf.startswith(b"%PDF-") and pdf == bytes(stored.pdf)
    assert stored.sha256 == hashlib.sha256(pdf).hexdigest()
    assert stored.renderer.startswith("weasyprint ")
    code = IssuedRecord.objects.get(record_id=record.record_id, version=1).verification_code_display
    url = f"https://hocba.example.vn/tra-cuu/{record.record_id}/v1/?code={code}"
    assert renders == [(record.record_id, url)]
    assert verify_url_for(record.record_id, 1, code=code) == url


def test_a_second_render_returns_the_stored_pdf_without_rendering(class_records, renders):
    first = year_record_pdf_render(record_id=class_records[0].pk)
    again = year_record_pdf_render(record_id=class_records[0].pk)

    assert len(renders) == 1
    assert again.pk == first.pk and again.rendered_at == first.rendered_at
    assert bytes(again.pdf) == bytes(first.pdf) and again.sha256 == first.sha256
    assert YearRecordPdf.objects.filter(record=class_records[0]).count() == 1


def test_the_stored_pdf_embeds_exactly_the_record_xml(class_records, tmp_path):
    record = class_records[0]
    stored = year_record_pdf_render(record_id=record.pk)
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(stored.pdf))
    out = tmp_path / "attachments"
    out.mkdir()

    poppler("pdfdetach", "-saveall", "-o", out, path)

    name = f"{record.record_id}-v{record.version}.xml"
    assert [p.name for p in out.iterdir()] == [name]
    issued = year_record_document(record)  # the sealed document, not the unsigned content
    assert b"<ds:Signature" in issued or b"Signature" in issued
    assert (out / name).read_bytes() == issued
    entry = IssuedRecord.objects.get(record_id=record.record_id, version=record.version)
    assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry.sha256
    text = poppler("pdftotext", "-enc", "UTF-8", path, "-")
    assert record.enrolment.student.full_name in text


def zbarimg(path: Path) -> list[str]:
    """The QR codes zbarimg (Debian package zbar-tools) reads in an image, one text each."""
    tool = shutil.which("zbarimg")
    if tool is None:
        pytest.fail("zbarimg is missing: apt-get install zbar-tools")
    result = subprocess.run(
        [tool, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_pdf_qr_code_and_printed_text_carry_the_verification_code(
    class_records, tmp_path, settings, client
):
    settings.HOCBA_PUBLIC_URL = "https://hocba.example.vn"
    settings.HOCBA_VERIFY_RATE_LIMIT = 100_000
    record = class_records[0]
    entry = IssuedRecord.objects.get(record_id=record.record_id, version=record.version)
    path = tmp_path / "record.pdf"
    path.write_bytes(bytes(year_record_pdf_render(record_id=record.pk).pdf))

    poppler("pdftoppm", "-r", "200", "-f", "1", "-l", "1", "-png", "-singlefile", path, tmp_path / "page")
    (scanned,) = zbarimg(tmp_path / "page.png")
    assert scanned == "https://hocba.example.vn" + entry.get_absolute_url()
    assert scanned.endswith("?code=" + entry.verification_code_display)
    # Printed for a person to type: the code on its own line, and in the link under the QR code.
    text = poppler("pdftotext", "-enc", "UTF-8", "-f", "1", "-l", "1", path, "-")
    assert "Mã xác thực:" in text and entry.verification_code_display in text
    # (The link wraps at its dashes, which pdftotext drops at a line's end.)
    assert scanned.removeprefix("https://").replace("-", "") in "".join(text.split()).replace("-", "")
    # What the phone opens shows the record.
    connection.set_schema_to_public()
    opened = client.get(scanned.removeprefix("https://hocba.example.vn"))
    assert opened.status_code == 200 and record.enrolment.student.full_name in opened.content.decode()


def test_a_record_not_in_the_public_index_gets_no_pdf(records):  # noqa: F811 -- imported above
    with pytest.raises(ValueError, match="is not in the public index: its PDF is made once it is issued"):
        year_record_pdf_render(record_id=records[0].pk)
    assert not YearRecordPdf.objects.exists()


def test_the_helper_queues_one_task_per_record_after_commit(
    class_records, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        tasks.year_record_pdf_render,
        "apply_async",
        lambda args, headers, **_: sent.append((args, headers)),
    )
    year_record_pdf_render(record_id=class_records[0].pk)  # has its PDF: not queued again

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        queued = year_record_pdfs_render([r.pk for r in class_records])
        assert sent == []  # nothing leaves before the commit

    assert len(callbacks) == 1
    assert queued == [class_records[1].pk]
    assert sent == [([class_records[1].pk], {"_schema_name": connection.schema_name})]


# --- A real worker ----------------------------------------------------------------------------


@pytest.fixture
def committed_record(django_db_blocker):
    """A year record committed in the test school (the worker sees only committed rows); removed after."""
    from portal.services import issued_record_add
    from schools.models import Enrolment, SchoolClass, SchoolYear, Student
    from schools.services import class_create, student_enrol

    tag = uuid.uuid4().hex[:6]
    class_name, student_code = f"8P-{tag}", f"PDF-{tag}"
    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        author = User.objects.get(username="homeroom_teacher")
        try:
            with school:
                year = SchoolYear.objects.get(is_current=True)
                school_class = class_create(school_year=year, name=class_name, grade=8, levels=school.levels)
                document = dataclasses.replace(  # a first version (the sample is a correction)
                    secondary_record(),
                    record_id=f"{school.code}.{student_code}.2025-2026",
                    version=1,
                    supersedes=None,
                )
                student = student_make(student_code, "Hoàng Văn Đức", 1, document.student.date_of_birth)
                enrolment = student_enrol(
                    student=student, school_class=school_class, enrolled_on=year.starts_on, number=1
                )
                xml = year_record_xml(document)
                record = YearRecord.objects.create(
                    enrolment=enrolment,
                    record_id=document.record_id,
                    version=1,
                    status=YearRecordStatus.DATA_COMPLETE,
                    xml=xml,
                    sha256=hashlib.sha256(xml).hexdigest(),
                    created_by=author,
                )
            # Indexed, as an issued record is: its PDF carries the index row's code.
            issued_record_add(
                school=school,
                record_id=record.record_id,
                version=1,
                sha256=record.sha256,
                school_year="2025-2026",
                student_code=student_code,
                personal_id=None,
                at=record.created_at,
            )
            connection.set_schema_to_public()
            yield school, record
        finally:  # whatever was made, even if the set-up failed half-way
            with school:
                YearRecordPdf.objects.filter(record__enrolment__student__student_code=student_code).delete()
                YearRecord.objects.filter(enrolment__student__student_code=student_code).delete()
                Enrolment.objects.filter(student__student_code=student_code).delete()
                Student.objects.filter(student_code=student_code).delete()
                SchoolClass.objects.filter(name=class_name).delete()
            connection.set_schema_to_public()
            IssuedRecord.objects.filter(student_code=student_code).delete()


@pytest.fixture
def celery_worker_queue(django_db_setup, django_db_blocker, tmp_path):
    """A Celery worker subprocess on the test database, consuming a queue of its own; stopped after."""
    queue = f"test-pdf-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        worker = Worker(queue=queue, log=tmp_path / "worker.log").start()
    try:
        yield queue, worker.process, worker.log
    finally:
        worker.stop()


@pytest.mark.slow
def test_a_celery_worker_renders_the_record_in_its_school(
    committed_record, celery_worker_queue, django_db_blocker
):
    school, record = committed_record
    queue, worker, log = celery_worker_queue

    with django_db_blocker.unblock():
        with school:  # the sender's schema goes with the task as its _schema_name header
            tasks.year_record_pdf_render.apply_async(args=[record.pk], queue=queue)
        connection.set_schema_to_public()

        deadline = time.monotonic() + 60
        stored = None
        while stored is None and time.monotonic() < deadline:
            assert worker.poll() is None, log.read_text(errors="replace")
            with school:
                stored = YearRecordPdf.objects.filter(record_id=record.pk).first()
            connection.set_schema_to_public()
            if stored is None:
                time.sleep(0.3)

    assert stored is not None, "no PDF after 60 s; worker log:\n" + log.read_text(errors="replace")
    pdf = bytes(stored.pdf)
    assert pdf.startswith(b"%PDF-") and stored.sha256 == hashlib.sha256(pdf).hexdigest()


def test_the_sweep_queues_the_pdf_of_an_issued_record_that_has_none(
    class_records, school, monkeypatch, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from transcripts.records.pdf import year_record_pdfs_missing

    sent = []
    monkeypatch.setattr(
        tasks.year_record_pdf_render, "apply_async", lambda args, headers, **_: sent.append(args)
    )
    first, second = class_records
    year_record_pdf_render(record_id=first.pk)  # rendered: left alone
    connection.set_schema_to_public()
    # Just issued: the task queued at issue is still on its way (its due row says so).
    with django_capture_on_commit_callbacks(execute=True):
        assert school.code not in year_record_pdfs_missing()
    # Its message not taken within HOCBA_PDF_QUEUED_SECONDS (lost): queued again, once.
    later = timezone.now() + dt.timedelta(seconds=record_pdf.queued_seconds() + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        assert year_record_pdfs_missing().get(school.code) == [second.pk]
        assert school.code not in year_record_pdfs_missing()
    assert sent == [[second.pk]]
