"""The PDFs due (issue 15): a public table of what is due, a sweep that queues each record once, a
worker's lease, a render outside the lock.

The first tests use committed data (the sweep runs as beat runs it, in autocommit, and sends real
messages to a queue of their own in the test Redis, read back with LLEN and decoded); the last one
starts real Celery workers and SIGKILLs the first while it holds a record's lease.

Issued records can never be deleted (a trigger), so these tests work in a school of their own,
`t-pdf-sweep`: what each test made is removed after it, and the school itself after the module,
with the triggers off for that one session (`session_replication_role = replica`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import json
import time
import uuid
from collections import Counter

import psycopg
import psycopg.sql
import pytest
import redis
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.choices import SchoolLevel
from portal.models import IssuedRecord, PdfDue, School, User
from portal.provisioning import SchoolSpec, school_provision
from tests.conftest import student_make
from tests.transcripts.test_document import secondary_record
from tests.worker import Worker, database_url
from transcripts.choices import SIGNING_ORDER
from transcripts.document import year_record_xml
from transcripts.models import YearRecord, YearRecordPdf, YearRecordSignature, YearRecordStatus
from transcripts.records.pdf import year_record_pdf_job, year_record_pdfs_missing, year_record_pdfs_render

SCHOOL_CODE = "t-pdf-sweep"
RECORDS = 2000


@pytest.fixture
def broker():
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    yield client
    client.close()


@pytest.fixture
def pdf_queue(settings, broker):
    """The render messages go to a queue of this test's own (read back, never consumed here)."""
    name = f"test-pdf-sweep-{uuid.uuid4().hex[:8]}"
    settings.HOCBA_PDF_QUEUE = name
    yield name
    broker.delete(name)


def _messages(broker, queue: str) -> list[tuple[str, str, int]]:
    """The task messages in the queue's Redis list (kombu's): (task, school schema, record pk)."""
    found = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        headers = message["headers"]
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((headers["task"], headers["_schema_name"], args[0]))
    return found


def _sweep_school() -> School:
    school = School.objects.filter(code=SCHOOL_CODE).first()
    if school is None:
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code=SCHOOL_CODE, name="Trường THCS Thử Hàng Đợi", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
    return school


def _issued_records(school: School, *, count: int, tag: str, signed: bool) -> list[int]:
    """`count` issued year records of one student in `school`, made in bulk (not signed one by
    one); with `signed`, each has its three signatures (the document itself, as the seal's
    signed document) and its index row, so it can be rendered. Returns their primary keys."""
    from portal.services import issued_record_add
    from schools.models import SchoolYear
    from schools.services import class_create, school_year_open, student_enrol

    author = User.objects.get(username="homeroom_teacher")
    sample = secondary_record()
    with school:
        year = SchoolYear.objects.filter(code="2025-2026").first() or school_year_open(
            code="2025-2026",
            starts_on=dt.date(2025, 9, 5),
            ends_on=dt.date(2026, 5, 31),
            levels=list(school.levels),
        )
        school_class = class_create(school_year=year, name=f"8Q-{tag}", grade=8, levels=school.levels)
        student = student_make(f"Q{tag}", "Hoàng Văn Đợi", 1, sample.student.date_of_birth)
        enrolment = student_enrol(
            student=student, school_class=school_class, enrolled_on=year.starts_on, number=1
        )
        xmls = {}
        rows = []
        for n in range(count):
            record_id = f"{school.code}.Q{tag}-{n:04d}.2025-2026"
            if signed:  # its own document: the renderer prints what the XML says
                xml = year_record_xml(
                    dataclasses.replace(sample, record_id=record_id, version=1, supersedes=None)
                )
            else:  # never rendered: one document shared keeps 2,000 rows cheap
                xml = xmls.setdefault("any", year_record_xml(sample))
            rows.append(
                YearRecord(
                    enrolment=enrolment,
                    record_id=record_id,
                    version=1,
                    status=YearRecordStatus.ISSUED,
                    xml=xml,
                    sha256=hashlib.sha256(xml).hexdigest(),
                    created_by=author,
                )
            )
        records = YearRecord.objects.bulk_create(rows)
        if signed:
            YearRecordSignature.objects.bulk_create(
                YearRecordSignature(
                    record=record,
                    position=position,
                    role=step.value,
                    signed_xml=bytes(record.xml),
                    sha256=record.sha256,
                    signer=author,
                    signer_name="Người Ký Thử",
                    certificate_fingerprint="0" * 64,
                    certificate_serial="1",
                )
                for record in records
                for position, step in enumerate(SIGNING_ORDER, start=1)
            )
    connection.set_schema_to_public()
    if signed:
        for record in records:
            issued_record_add(
                school=school,
                record_id=record.record_id,
                version=1,
                sha256=record.sha256,
                school_year="2025-2026",
                student_code=f"Q{tag}",
                personal_id=None,
                at=record.created_at,
            )
    return [record.pk for record in records]


def _remove(school: School) -> None:
    """Every record of the school of these tests and what came with it (a run that stopped half-way
    leaves some), with the triggers off for this session only (issued rows are undeletable)."""
    from schools.models import Enrolment, SchoolClass, Student

    connection.set_schema_to_public()
    PdfDue.objects.filter(school=school).delete()
    IssuedRecord.objects.filter(school=school).delete()
    with school, connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            for related in YearRecord._meta.related_objects:  # PDF, XML copy, signatures, events...
                related.related_model._base_manager.filter(
                    **{f"{related.field.name}__isnull": False}
                ).delete()
            YearRecord.objects.all().delete()
            Enrolment.objects.all().delete()  # with what cascades from them
            Student.objects.all().delete()
            SchoolClass.objects.all().delete()
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
    connection.set_schema_to_public()


def _school_drop(school: School) -> None:
    """The school gone again, schema and public rows (its audit entry is append-only, so the
    triggers are off for this session only): province-wide pages of later tests do not list it."""
    from django.apps import apps

    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    psycopg.sql.Identifier(school.schema_name)
                )
            )
            for model in apps.get_models():  # the public rows that name it
                for field in model._meta.concrete_fields:
                    if field.is_relation and field.related_model is School:
                        rows = model._base_manager.filter(**{field.name: school})
                        rows._raw_delete(rows.db)
            rows = School.objects.filter(pk=school.pk)
            rows._raw_delete(rows.db)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture(scope="module")
def _school_of_the_module(django_db_setup, django_db_blocker):
    """The school these tests work in: provisioned for the module, dropped after it."""
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        school = _sweep_school()
    try:
        yield school
    finally:
        with django_db_blocker.unblock():
            _school_drop(school)


@pytest.fixture
def sweep_school(_school_of_the_module, django_db_blocker):
    """The school of these tests, committed, emptied before and after; the table of PDFs due too
    (the sweep takes what is due province-wide: earlier runs' committed records would join ours)."""
    tags: list[str] = []
    school = _school_of_the_module
    with django_db_blocker.unblock():
        _remove(school)
        PdfDue.objects.all().delete()
        try:
            yield school, tags
        finally:
            _remove(school)
            PdfDue.objects.all().delete()


def _issue(school: School, pks: list[int]) -> list[int]:
    """What the lifecycle does when records are issued: list their PDFs as due, in the issuing
    transaction, in the school's schema; the messages leave after the commit."""
    with school, transaction.atomic():
        return year_record_pdfs_render(pks)


def test_ten_sweeps_in_a_row_queue_each_of_2000_records_once(
    sweep_school, pdf_queue, broker, django_db_blocker
):
    school, tags = sweep_school
    with django_db_blocker.unblock():
        tags.append(uuid.uuid4().hex[:6])
        pks = _issued_records(school, count=RECORDS, tag=tags[-1], signed=False)

        # Issued: one due row each, one message each, sent after the commit.
        assert sorted(_issue(school, pks)) == sorted(pks)
        assert PdfDue.objects.filter(school=school).count() == RECORDS
        assert broker.llen(pdf_queue) == RECORDS
        expected = Counter(("transcripts.tasks.year_record_pdf_render", school.schema_name, pk) for pk in pks)
        assert Counter(_messages(broker, pdf_queue)) == expected

        # The backlog is still in the broker: ten sweeps queue nothing more (the old sweep queued
        # all 2,000 again every time once they were 5 minutes old).
        for _ in range(10):
            assert year_record_pdfs_missing() == {}
        assert broker.llen(pdf_queue) == RECORDS

        # The messages lost (the broker emptied) and their mark run out: the first sweep queues
        # each record once, the nine after it nothing.
        broker.delete(pdf_queue)
        PdfDue.objects.filter(school=school).update(queued_until=timezone.now() - dt.timedelta(seconds=1))
        with CaptureQueriesContext(connection) as statements:
            first = year_record_pdfs_missing()
        assert first == {school.code: sorted(pks)}
        assert [year_record_pdfs_missing() for _ in range(9)] == [{}] * 9
        assert broker.llen(pdf_queue) == RECORDS
        assert Counter(_messages(broker, pdf_queue)) == expected

    # One statement on the public table found and marked them; no school's schema was visited.
    work = [q["sql"] for q in statements.captured_queries if not q["sql"].upper().startswith("SET ")]
    assert len(work) == 1 and work[0].lstrip().upper().startswith("UPDATE"), work
    assert not any(school.schema_name in q["sql"] for q in statements.captured_queries)


def test_a_render_that_fails_is_kept_with_its_error_and_tried_again_after_a_back_off(
    sweep_school, pdf_queue, broker, django_db_blocker
):
    school, tags = sweep_school
    with django_db_blocker.unblock():
        tags.append(uuid.uuid4().hex[:6])
        (pk,) = _issued_records(school, count=1, tag=tags[-1], signed=False)  # not in the index
        _issue(school, [pk])
        broker.delete(pdf_queue)
        with school:
            assert year_record_pdf_job(record_id=pk, worker="w1") is None
        connection.set_schema_to_public()
        row = PdfDue.objects.get(school=school, record_pk=pk)
        assert row.attempts == 1 and "is not in the public index" in row.last_error
        assert (row.lease_owner, row.lease_until, row.queued_until) == ("", None, None)
        assert row.due_at > timezone.now() + dt.timedelta(seconds=50)  # the back-off: a minute
        out = io.StringIO()  # what the operators see
        call_command("year_record_pdfs_due", "--failing", stdout=out)
        assert (
            f"{school.code} {pk}: 1 · " in out.getvalue() and "is not in the public index" in out.getvalue()
        )
        assert year_record_pdfs_missing() == {}  # not before its back-off is over
        PdfDue.objects.filter(pk=row.pk).update(due_at=timezone.now() - dt.timedelta(seconds=1))
        assert year_record_pdfs_missing() == {school.code: [pk]}
        assert [m[2] for m in _messages(broker, pdf_queue)] == [pk]
        with school:
            assert not YearRecordPdf.objects.filter(record_id=pk).exists()


def test_a_message_for_a_record_another_worker_holds_or_has_made_renders_nothing(
    sweep_school, pdf_queue, django_db_blocker
):
    from portal.jobs.services import pdf_due_claim

    school, tags = sweep_school
    with django_db_blocker.unblock():
        tags.append(uuid.uuid4().hex[:6])
        (pk,) = _issued_records(school, count=1, tag=tags[-1], signed=True)
        _issue(school, [pk])
        claim = {
            "schema_name": school.schema_name,
            "record_pk": pk,
            "lease_seconds": 60,
            "seal_grace_seconds": 0,
        }
        assert pdf_due_claim(worker="w-other", **claim)  # another worker is rendering it
        with school:
            assert year_record_pdf_job(record_id=pk, worker="w-mine") is None  # a duplicate: refused
            assert not YearRecordPdf.objects.filter(record_id=pk).exists()
        connection.set_schema_to_public()
        assert PdfDue.objects.get(school=school, record_pk=pk).lease_owner == "w-other"

        PdfDue.objects.filter(school=school, record_pk=pk).update(  # its lease ran out
            lease_until=timezone.now() - dt.timedelta(seconds=1)
        )
        with school:
            made = year_record_pdf_job(record_id=pk, worker="w-mine")
            assert made == YearRecordPdf.objects.get(record_id=pk).pk
            # A message delivered again afterwards: the PDF is there, nothing is made again.
            assert year_record_pdf_job(record_id=pk, worker="w-late") == made
            assert YearRecordPdf.objects.filter(record_id=pk).count() == 1
        connection.set_schema_to_public()
        assert not PdfDue.objects.filter(school=school, record_pk=pk).exists()  # done: the row went


def test_the_command_lists_records_issued_before_the_table_for_the_sweep(
    sweep_school, pdf_queue, broker, django_db_blocker
):
    school, tags = sweep_school
    with django_db_blocker.unblock():
        tags.append(uuid.uuid4().hex[:6])
        pks = _issued_records(school, count=3, tag=tags[-1], signed=False)  # issued, no due row
        assert year_record_pdfs_missing() == {}  # the sweep does not look into the schools

        out = io.StringIO()
        call_command("year_record_pdfs_due", "--school", school.code, stdout=out)
        assert f"{school.code}: 3" in out.getvalue()
        rows = PdfDue.objects.filter(school=school)
        assert sorted(rows.values_list("record_pk", flat=True)) == sorted(pks)
        assert not rows.filter(queued_until__isnull=False).exists()  # listed, not queued: the sweep queues
        call_command("year_record_pdfs_due", "--school", school.code, stdout=io.StringIO())
        assert rows.count() == 3  # run again: nothing added

        assert year_record_pdfs_missing() == {school.code: sorted(pks)}
        assert sorted(m[2] for m in _messages(broker, pdf_queue)) == sorted(pks)


# --- A worker killed mid-render -----------------------------------------------------------------


def _waiting_on_a_lock(conn: psycopg.Connection) -> bool:
    """Is a backend of the test database blocked on a lock while storing a year record's PDF?"""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE %s",
        ["%transcripts_yearrecord%FOR NO KEY UPDATE%"],
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_a_worker_killed_mid_render_leaves_the_record_to_the_sweep_once_its_lease_runs_out(
    sweep_school, pdf_queue, broker, django_db_blocker, tmp_path
):
    school, tags = sweep_school
    lease = 20
    env = {"HOCBA_PDF_QUEUE": pdf_queue, "HOCBA_PDF_LEASE_SECONDS": str(lease)}
    log = tmp_path / "worker.log"
    with django_db_blocker.unblock():
        tags.append(uuid.uuid4().hex[:6])
        (pk,) = _issued_records(school, count=1, tag=tags[-1], signed=True)
        # Another transaction holds the record's row: the worker claims the record and renders
        # its PDF (outside any lock), then waits for the row to store it. It is killed there.
        holder = psycopg.connect(database_url(), autocommit=False)
        try:
            holder.execute(
                psycopg.sql.SQL("SELECT 1 FROM {}.transcripts_yearrecord WHERE id = %s FOR UPDATE").format(
                    psycopg.sql.Identifier(school.schema_name)
                ),
                [pk],
            )
            _issue(school, [pk])
            first = Worker(queue=pdf_queue, log=log, env=env).start()
            try:
                watcher = psycopg.connect(database_url(), autocommit=True)
                deadline = time.monotonic() + 45
                while not _waiting_on_a_lock(watcher) and time.monotonic() < deadline:
                    assert first.alive(), first.output()
                    time.sleep(0.2)
                assert _waiting_on_a_lock(watcher), "the worker never reached the store:\n" + first.output()
                watcher.close()
                held = PdfDue.objects.get(school=school, record_pk=pk)
                assert held.lease_owner and held.lease_until is not None and held.queued_until is None
            finally:
                first.kill()
        finally:
            holder.rollback()
            holder.close()
        with school:
            assert not YearRecordPdf.objects.filter(record_id=pk).exists()  # nothing stored
        connection.set_schema_to_public()

        # While its lease runs, the record is the dead worker's: the sweep leaves it.
        if timezone.now() < held.lease_until - dt.timedelta(seconds=1):
            assert year_record_pdfs_missing() == {}
        assert broker.llen(pdf_queue) == 0  # the dead worker's message is unacknowledged, not queued
        # Once it has run out, the sweep queues the record, once.
        deadline = time.monotonic() + lease + 30
        swept: dict[str, list[int]] = {}
        while not swept and time.monotonic() < deadline:
            swept = year_record_pdfs_missing()
            time.sleep(0.5)
        assert swept == {school.code: [pk]}
        assert timezone.now() >= held.lease_until
        assert year_record_pdfs_missing() == {}
        assert [m[2] for m in _messages(broker, pdf_queue)] == [pk]

        second = Worker(queue=pdf_queue, log=log, env=env).start()
        try:
            deadline = time.monotonic() + 45
            stored = None
            while stored is None and time.monotonic() < deadline:
                assert second.alive(), second.output()
                with school:
                    stored = YearRecordPdf.objects.filter(record_id=pk).first()
                connection.set_schema_to_public()
                time.sleep(0.3)
        finally:
            second.stop()
        assert stored is not None, "no PDF after 45 s:\n" + second.output()
        with school:
            assert YearRecordPdf.objects.filter(record_id=pk).count() == 1  # made once
        connection.set_schema_to_public()
        assert not PdfDue.objects.filter(school=school, record_pk=pk).exists()
