"""A signing batch in a real Celery worker, killed half-way, resumed by another: each record signed once.

Everything the worker touches is committed (it is another process): a class of 40 confirmed year
records in a school of its own (signed records can never be deleted, by design, so they stay in
that school), a homeroom teacher with a credential at the reference remote-signing service (run
with a delay per signature, so the batch lasts a few seconds), and the batch, confirmed with the
OTP the service printed in its log. The worker is SIGKILLed once some records are signed; after
its lease has run out a new worker starts, its start-up sweep takes the batch up again, and it
finishes. Then every record carries exactly one homeroom teacher's signature, which verifies.

The worker signs in chunks (HOCBA_SIGNING_CHUNK): the second test kills it while a chunk's
transaction is open (its items locked, the signHash call in flight at a slow service), so the
remote service has signed hashes the portal never stores: nothing of that chunk is written, and
the next worker signs it again within the approval (which covers one chunk spare).
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import OperationalError, connection, transaction

from signing import trust
from signing.models import BatchState, ItemState, SigningBatch, SigningBatchItem
from signing.services import certificate_register_csc, signing_batch_confirm, signing_batch_start
from signing.verify import verify_year_record
from tests.reference.service import CscService
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school, worker_signing_env
from tests.worker import Worker
from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

pytestmark = pytest.mark.slow

RECORDS = 40
LEASE_SECONDS = 3
CHUNK = 4  # ten chunks: killed after two or more of them, the batch is still mid-way
SCHOOL_CODE = "t-sign-worker"
TEACHER = ("t-sign-worker-gvcn", "Phan Chủ Nhiệm Ký")


@pytest.fixture
def csc(tmp_path):
    service = CscService(tmp_path / "csc", delay_ms=60)
    yield service
    service.stop()


def _world(tag: str, csc: CscService):
    """The school, a teacher with a remote credential, a class of RECORDS confirmed records."""
    school = signing_school()
    teacher = homeroom_teacher_for(school, tag)
    credential_id, _cert = csc.enrol(
        teacher.username, teacher.full_name, "Giáo viên chủ nhiệm", algorithm="ec"
    )
    certificate = certificate_register_csc(actor=teacher, credential_id=credential_id)
    school_class = confirmed_class(school, teacher, tag=tag, size=RECORDS)
    return school, teacher, certificate, school_class


def test_a_worker_killed_mid_batch_leaves_every_record_signed_exactly_once(
    csc, settings, django_db_setup, django_db_blocker, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    queue = f"test-signing-{tag}"
    settings.HOCBA_SIGNING_CHUNK = CHUNK  # the approval's spare covers a chunk
    signing_env = worker_signing_env(
        csc,
        settings,
        tmp_path,
        queue=queue,
        HOCBA_SIGNING_LEASE_SECONDS=str(LEASE_SECONDS),
        HOCBA_SIGNING_CHUNK=str(CHUNK),
    )
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


def test_a_worker_killed_inside_a_chunk_writes_nothing_of_it_and_the_next_signs_it_once(
    settings, django_db_setup, django_db_blocker, tmp_path
):
    chunk = 10
    csc = CscService(tmp_path / "csc", delay_ms=1500)  # a slow service: a chunk takes 1.5 s
    tag = uuid.uuid4().hex[:6]
    queue = f"test-signing-{tag}"
    settings.HOCBA_SIGNING_CHUNK = chunk  # the approval's spare covers one chunk
    signing_env = worker_signing_env(
        csc,
        settings,
        tmp_path,
        queue=queue,
        HOCBA_SIGNING_LEASE_SECONDS=str(LEASE_SECONDS),
        HOCBA_SIGNING_CHUNK=str(chunk),
    )
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
            signing_batch_confirm(
                actor=teacher, school=school, batch=batch, otp=csc.otp_for(certificate.csc_credential_id)
            )
            items = list(batch.items.order_by("position").values_list("pk", flat=True))

            def done() -> int:
                return batch.items.filter(state=ItemState.DONE).count()

            def second_chunk_locked() -> bool:
                """The worker holds the second chunk's items (its transaction is open)."""
                try:
                    with transaction.atomic():
                        list(
                            SigningBatchItem.objects.select_for_update(nowait=True).filter(
                                pk__in=items[chunk : 2 * chunk]
                            )
                        )
                    return False
                except OperationalError:
                    return True

            deadline = time.monotonic() + 60
            while not (done() == chunk and second_chunk_locked()) and time.monotonic() < deadline:
                assert first.alive(), first.output()
                assert done() <= chunk, "the worker went past the second chunk before it was caught"
                time.sleep(0.02)
            first.kill()
            assert done() == chunk, "the kill did not land inside the second chunk"
            # Nothing of the chunk in hand was written: its items pending, its records unsigned.
            assert (
                list(batch.items.filter(pk__in=items[chunk : 2 * chunk]).values_list("state", flat=True))
                == [ItemState.PENDING] * chunk
            )
            with school:
                assert (
                    YearRecordSignature.objects.filter(record__enrolment__school_class=school_class).count()
                    == chunk
                )

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
            with school:
                records = list(YearRecord.objects.filter(enrolment__school_class=school_class))
                assert {r.status for r in records} == {YearRecordStatus.SIGNED_HOMEROOM}
                per_record = {r.pk: YearRecordSignature.objects.filter(record=r).count() for r in records}
                assert set(per_record.values()) == {1}, per_record
                for r in records[chunk : 2 * chunk : 3]:  # the chunk the kill interrupted
                    document = bytes(YearRecordSignature.objects.get(record=r).signed_xml)
                    reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
                    assert [x.problems for x in reports] == [()]
            connection.set_schema_to_public()
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            csc.stop()
            connection.set_schema_to_public()
            trust.trust_reset()
