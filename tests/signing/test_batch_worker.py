"""A signing batch in a real Celery worker, killed half-way, resumed by another: each record signed once.

Everything the worker touches is committed (it is another process): a class of 40 confirmed year
records in a school of its own (signed records can never be deleted, by design, so they stay in
that school), a homeroom teacher with a credential at the reference remote-signing service (run
with a delay per signature, so the batch lasts a few seconds), and the batch, confirmed with the
OTP the service printed in its log. The worker is SIGKILLed once some records are signed; after
its lease has run out a new worker starts, its start-up sweep takes the batch up again, and it
finishes. Then every record carries exactly one homeroom teacher's signature, which verifies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection

from portal.choices import Role, SchoolLevel
from portal.models import RoleAssignment, School, User
from portal.provisioning import SchoolSpec, school_provision
from signing import trust
from signing.models import BatchState, ItemState, SigningBatch
from signing.services import certificate_register_csc, signing_batch_confirm, signing_batch_start
from signing.verify import verify_year_record
from tests.conftest import student_make
from tests.reference.service import CscService
from tests.transcripts.test_document import secondary_record
from tests.worker import Worker
from transcripts.document import year_record_xml
from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

pytestmark = pytest.mark.slow

RECORDS = 40
LEASE_SECONDS = 3
SCHOOL_CODE = "t-sign-worker"
TEACHER = ("t-sign-worker-gvcn", "Phan Chủ Nhiệm Ký")


@pytest.fixture
def csc(tmp_path):
    service = CscService(tmp_path / "csc", delay_ms=60)
    yield service
    service.stop()


def _world(tag: str, csc: CscService):
    """The school, the teacher with their remote credential, a class of RECORDS confirmed records."""
    from schools.models import SchoolYear
    from schools.services import class_create, school_year_open, student_enrol

    connection.set_schema_to_public()
    school = School.objects.filter(code=SCHOOL_CODE).first()
    if school is None:
        school, _ = school_provision(
            actor=None,
            spec=SchoolSpec(
                code=SCHOOL_CODE, name="Trường THCS Thử Ký Số", levels=(SchoolLevel.LOWER_SECONDARY,)
            ),
            division=None,
        )
    teacher, _ = User.objects.get_or_create(username=TEACHER[0], defaults={"full_name": TEACHER[1]})
    if not RoleAssignment.objects.current().filter(user=teacher, school=school).exists():
        RoleAssignment.objects.create(user=teacher, role=Role.HOMEROOM_TEACHER, school=school)
    username = f"{TEACHER[0]}-{tag}"  # a fresh credential per run: its certificate is new
    teacher.username = username
    teacher.save(update_fields=["username"])
    credential_id, _cert = csc.enrol(username, TEACHER[1], "Giáo viên chủ nhiệm", algorithm="ec")
    certificate = certificate_register_csc(actor=teacher, credential_id=credential_id)
    with school:
        year = SchoolYear.objects.filter(code="2025-2026").first() or school_year_open(
            code="2025-2026",
            starts_on=dt.date(2025, 9, 5),
            ends_on=dt.date(2026, 5, 31),
            levels=list(school.levels),
        )
        school_class = class_create(
            school_year=year, name=f"8K-{tag}", grade=8, levels=school.levels, homeroom_teacher=teacher
        )
        sample = secondary_record()
        for n in range(1, RECORDS + 1):
            code = f"K{tag}{n:02d}"
            student = student_make(code, f"Học Sinh {n:02d}", 1 + n % 2, sample.student.date_of_birth)
            enrolment = student_enrol(
                student=student, school_class=school_class, enrolled_on=year.starts_on, number=n
            )
            document = dataclasses.replace(
                sample, record_id=f"{SCHOOL_CODE}.{code}.2025-2026", version=1, supersedes=None
            )
            xml = year_record_xml(document)
            YearRecord.objects.create(
                enrolment=enrolment,
                record_id=document.record_id,
                version=1,
                status=YearRecordStatus.CONFIRMED,
                xml=xml,
                sha256=hashlib.sha256(xml).hexdigest(),
                created_by=teacher,
            )
    connection.set_schema_to_public()
    return school, teacher, certificate, school_class


def test_a_worker_killed_mid_batch_leaves_every_record_signed_exactly_once(
    csc, settings, django_db_setup, django_db_blocker, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    queue = f"test-signing-{tag}"
    roots = tmp_path / "roots.pem"
    pems = [Path(f).read_bytes() for f in settings.HOCBA_TRUST_ROOTS]
    roots.write_bytes(b"".join(pems) + csc.root_cert().public_bytes(Encoding.PEM))
    crl_url = f"{csc.url}/ca/crl.der"
    signing_env = {
        "HOCBA_TRUST_ROOTS": str(roots),
        "HOCBA_TRUST_CRLS": ",".join([*settings.HOCBA_TRUST_CRLS, crl_url]),
        "HOCBA_CSC_URL": csc.url,
        "HOCBA_CSC_CLIENT_SECRET": csc.client_secret,
        "HOCBA_SIGNING_QUEUE": queue,
        "HOCBA_SIGNING_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    settings.HOCBA_TRUST_ROOTS = [str(roots)]
    settings.HOCBA_TRUST_CRLS = [*settings.HOCBA_TRUST_CRLS, crl_url]
    settings.HOCBA_CSC_URL, settings.HOCBA_CSC_CLIENT_SECRET = csc.url, csc.client_secret
    settings.HOCBA_SIGNING_QUEUE = queue
    trust.trust_reset()
    log = tmp_path / "worker.log"
    first = second = None
    with django_db_blocker.unblock():
        try:
            school, teacher, certificate, school_class = _world(tag, csc)
            with school:
                batch = signing_batch_start(
                    actor=teacher,
                    school=school,
                    step="homeroom_teacher",
                    certificate=certificate,
                    school_class=school_class,
                )
            first = Worker(queue=queue, log=log, env=signing_env).start()
            # The confirmation queues the job (after its commit) on this test's signing queue.
            signing_batch_confirm(
                actor=teacher, school=school, batch=batch, otp=csc.otp_for(certificate.csc_credential_id)
            )

            def done() -> int:
                return batch.items.filter(state=ItemState.DONE).count()

            deadline = time.monotonic() + 60
            while done() < 8 and time.monotonic() < deadline:
                assert first.alive(), first.output()
                time.sleep(0.05)
            first.kill()
            at_kill = done()
            assert 0 < at_kill < RECORDS, f"the worker was killed after {at_kill} records: not mid-batch"
            assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.RUNNING

            time.sleep(LEASE_SECONDS + 0.5)  # the dead worker's lease runs out
            second = Worker(queue=queue, log=log, env=signing_env).start()
            deadline = time.monotonic() + 90
            while (
                SigningBatch.objects.get(pk=batch.pk).state != BatchState.DONE and time.monotonic() < deadline
            ):
                assert second.alive(), second.output()
                time.sleep(0.2)
            batch.refresh_from_db()
            assert batch.state == BatchState.DONE, second.output()

            assert set(batch.items.values_list("state", flat=True)) == {ItemState.DONE}
            assert batch.secret is None
            with school:
                records = list(YearRecord.objects.filter(enrolment__school_class=school_class))
                assert len(records) == RECORDS
                assert {r.status for r in records} == {YearRecordStatus.SIGNED_HOMEROOM}
                per_record = {r.pk: YearRecordSignature.objects.filter(record=r).count() for r in records}
                assert set(per_record.values()) == {1}, per_record
                for r in records[:: RECORDS // 4]:
                    document = bytes(YearRecordSignature.objects.get(record=r).signed_xml)
                    assert document.count(b"<ds:Signature ") == 1
                    reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
                    assert [x.problems for x in reports] == [()]
            connection.set_schema_to_public()
            print(
                f"killed after {at_kill} of {RECORDS} records; the second worker signed {RECORDS - at_kill}"
            )
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            connection.set_schema_to_public()
            trust.trust_reset()
