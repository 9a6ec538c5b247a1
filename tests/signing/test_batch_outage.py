"""A remote-signing outage in the middle of a batch pauses it; it does not fail it (issue 10).

Everything the worker touches is committed (it is another process), as in test_batch_worker.py:
a class of 40 confirmed year records, a homeroom teacher with a credential at the reference
remote-signing service (a real subprocess, with a delay per signature so the batch lasts a few
seconds), the batch confirmed with the OTP the service logged, and a real Celery worker. Once
some records are signed the service process is stopped (SIGTERM: a real stopped process, no
mock), left down 5 s, and started again on the same port and data directory. Meanwhile the
batch pauses (next_attempt_at in the database, the lease released, the progress says when it
tries again) and comes back by itself: every record signed exactly once, none failed, with the
approval (SAD) the signer gave before the outage.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django.utils import translation

from signing import trust
from signing.models import BatchState, ItemState, SigningBatch
from signing.selectors import signing_batch_progress
from signing.services import (
    certificate_register_csc,
    signing_batch_confirm,
    signing_batch_start,
    signing_batches_resume,
)
from signing.verify import verify_year_record
from tests.reference.service import CscService
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school, worker_signing_env
from tests.worker import Worker
from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

pytestmark = pytest.mark.slow

RECORDS = 40
OUTAGE_SECONDS = 5
CHUNK = 4  # the batch in ten chunks: stopped after two or more, it is still mid-way
BEAT_SECONDS = 15  # the resume sweep's schedule (HOCBA_SIGNING_RESUME_SECONDS), played by the test


@pytest.fixture
def csc(tmp_path):
    service = CscService(tmp_path / "csc", delay_ms=60)
    yield service
    service.stop()


def test_a_remote_signing_outage_mid_batch_pauses_it_and_every_record_is_signed_once_none_failed(
    csc, settings, django_db_setup, django_db_blocker, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    queue = f"test-outage-{tag}"
    settings.HOCBA_SIGNING_CHUNK = CHUNK  # the approval's spare covers a chunk
    signing_env = worker_signing_env(csc, settings, tmp_path, queue=queue, HOCBA_SIGNING_CHUNK=str(CHUNK))
    worker = None
    with django_db_blocker.unblock():
        try:
            school = signing_school()
            teacher = homeroom_teacher_for(school, tag)
            credential_id, _cert = csc.enrol(
                teacher.username, teacher.full_name, "Giáo viên chủ nhiệm", algorithm="ec"
            )
            certificate = certificate_register_csc(actor=teacher, credential_id=credential_id)
            school_class = confirmed_class(school, teacher, tag=tag, size=RECORDS)
            with school:
                batch = signing_batch_start(
                    actor=teacher,
                    school=school,
                    step="homeroom_teacher",
                    certificate=certificate,
                    school_class=school_class,
                )
            worker = Worker(queue=queue, log=tmp_path / "worker.log", env=signing_env).start()
            signing_batch_confirm(
                actor=teacher, school=school, batch=batch, otp=csc.otp_for(certificate.csc_credential_id)
            )

            def done() -> int:
                return batch.items.filter(state=ItemState.DONE).count()

            started = time.monotonic()
            deadline = started + 60
            while done() < 10 and time.monotonic() < deadline:
                assert worker.alive(), worker.output()
                time.sleep(0.05)
            port = csc.port
            csc.stop(keep_data=True)  # SIGTERM: the service process is gone, its port closed
            stopped_at = time.monotonic()
            at_stop = done()
            assert 0 < at_stop < RECORDS, f"the service stopped after {at_stop} records: not mid-batch"

            # While it is down: the batch pauses (no item fails) and says when it tries again.
            paused_label = ""
            most_failures = 0
            while time.monotonic() - stopped_at < OUTAGE_SECONDS:
                state = SigningBatch.objects.get(pk=batch.pk)
                most_failures = max(most_failures, state.retry_count)
                if state.next_attempt_at is not None and state.state == BatchState.QUEUED:
                    assert state.lease_owner == "" and state.lease_until is None
                    with translation.override("vi"):
                        progress = signing_batch_progress(state)
                    if progress["paused"]:
                        paused_label = progress["state_label"]
                assert not batch.items.filter(state=ItemState.FAILED).exists(), list(
                    batch.items.filter(state=ItemState.FAILED).values_list("reason", flat=True)
                )
                time.sleep(0.1)
            assert most_failures >= 1, "the batch never paused during the outage"
            assert paused_label.startswith("Tạm dừng, thử lại lúc "), paused_label
            at_restart = done()
            assert at_restart < RECORDS

            csc._start(port=port)  # the same port (the URL the worker has) and data directory
            restarted_at = time.monotonic()
            deadline = restarted_at + 120
            last_sweep = restarted_at
            resumed_at: float | None = None
            while (
                SigningBatch.objects.get(pk=batch.pk).state != BatchState.DONE and time.monotonic() < deadline
            ):
                assert worker.alive(), worker.output()
                if time.monotonic() - last_sweep > BEAT_SECONDS:  # what Celery beat does
                    signing_batches_resume()
                    last_sweep = time.monotonic()
                if resumed_at is None and done() > at_restart:
                    resumed_at = time.monotonic()
                time.sleep(0.1)
            finished_at = time.monotonic()
            batch.refresh_from_db()
            assert batch.state == BatchState.DONE, worker.output()

            assert set(batch.items.values_list("state", flat=True)) == {ItemState.DONE}
            assert batch.secret is None
            assert batch.retry_count == 0 and batch.next_attempt_at is None  # cleared by the recovery
            with school:
                records = list(YearRecord.objects.filter(enrolment__school_class=school_class))
                assert len(records) == RECORDS
                assert {r.status for r in records} == {YearRecordStatus.SIGNED_HOMEROOM}
                per_record = {r.pk: YearRecordSignature.objects.filter(record=r).count() for r in records}
                assert set(per_record.values()) == {1}, per_record
                for r in records:
                    document = bytes(YearRecordSignature.objects.get(record=r).signed_xml)
                    assert document.count(b"<ds:Signature ") == 1
                    reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
                    assert [x.problems for x in reports] == [()]
            connection.set_schema_to_public()
            print(
                f"stopped after {at_stop} of {RECORDS} records for {OUTAGE_SECONDS} s; "
                f"{most_failures} retryable failure(s) seen while down; "
                f"signing again {(resumed_at or finished_at) - restarted_at:.1f} s after the restart, "
                f"finished {finished_at - restarted_at:.1f} s after it "
                f"({finished_at - started:.1f} s in all); shown: {paused_label!r}"
            )
        finally:
            if worker is not None:
                worker.stop()
            connection.set_schema_to_public()
            trust.trust_reset()
