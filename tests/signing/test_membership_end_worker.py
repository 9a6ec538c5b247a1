"""A contract teacher's batch in a real Celery worker, taken up after their role in the school ended
(issue 14): nothing is signed with their key, every item fails with its reason and the batch
finishes (not paused, not retried); what they signed in an earlier batch still verifies.

Everything the worker touches is committed (it is another process), in the signing tests' own
school (tests/signing/world.py). The worker is stopped between the confirmation and the end of the
role, so the job waits in the queue while the role ends; no clock is moved.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from portal.models import RoleAssignment
from portal.services import role_assignments_expire
from signing import trust
from signing.models import BatchState, ItemState, SigningBatch
from signing.services import certificate_register_csc, signing_batch_confirm, signing_batch_start
from signing.verify import verify_year_record
from tests.reference.service import CscService
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school, worker_signing_env
from tests.worker import Worker
from transcripts.models import YearRecord, YearRecordSignature

pytestmark = pytest.mark.slow

RECORDS = 3


@pytest.fixture
def csc(tmp_path):
    service = CscService(tmp_path / "csc")
    yield service
    service.stop()


def _wait_done(batch: SigningBatch, worker: Worker) -> SigningBatch:
    deadline = time.monotonic() + 90
    while SigningBatch.objects.get(pk=batch.pk).state != BatchState.DONE and time.monotonic() < deadline:
        assert worker.alive(), worker.output()
        time.sleep(0.1)
    batch.refresh_from_db()
    assert batch.state == BatchState.DONE, worker.output()
    return batch


def _start(school, teacher, certificate, school_class) -> SigningBatch:
    with school:
        return signing_batch_start(
            actor=teacher,
            school=school,
            step="homeroom_teacher",
            certificate=certificate,
            school_class=school_class,
        )


def test_a_batch_taken_up_after_the_teachers_role_ended_signs_nothing_and_earlier_signatures_stay_valid(
    csc, settings, django_db_setup, django_db_blocker, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    queue = f"test-signing-end-{tag}"
    env = worker_signing_env(csc, settings, tmp_path, queue=queue)
    log = tmp_path / "worker.log"
    first = second = None
    with django_db_blocker.unblock():
        try:
            school = signing_school()
            teacher = homeroom_teacher_for(school, tag)
            today = timezone.localdate()
            RoleAssignment.objects.filter(user=teacher, school=school).update(valid_until=today)  # a contract
            credential_id, _cert = csc.enrol(
                teacher.username, teacher.full_name, "Giáo viên chủ nhiệm", algorithm="ec"
            )
            certificate = certificate_register_csc(actor=teacher, credential_id=credential_id)
            earlier_class = confirmed_class(school, teacher, tag=f"{tag}a", size=RECORDS)
            later_class = confirmed_class(school, teacher, tag=f"{tag}b", size=RECORDS)

            # While the contract lasts: a batch signed by the worker.
            first = Worker(queue=queue, log=log, env=env).start()
            earlier = _start(school, teacher, certificate, earlier_class)
            signing_batch_confirm(
                actor=teacher, school=school, batch=earlier, otp=csc.otp_for(certificate.csc_credential_id)
            )
            earlier = _wait_done(earlier, first)
            assert set(earlier.items.values_list("state", flat=True)) == {ItemState.DONE}
            first.stop()

            # A second batch, confirmed on the last day; no worker takes it before the role ends.
            later = _start(school, teacher, certificate, later_class)
            assert set(later.items.values_list("sign_before", flat=True)) == {
                dt.datetime.combine(
                    today + dt.timedelta(days=1), dt.time.min, tzinfo=timezone.get_default_timezone()
                )
            }
            signing_batch_confirm(
                actor=teacher, school=school, batch=later, otp=csc.otp_for(certificate.csc_credential_id)
            )
            RoleAssignment.objects.filter(user=teacher, school=school).update(
                valid_until=today - dt.timedelta(days=1)
            )
            assert role_assignments_expire(today=today) >= 1
            assert RoleAssignment.objects.get(user=teacher, school=school).revoked_at is not None

            second = Worker(queue=queue, log=log, env=env).start()
            later = _wait_done(later, second)
            assert set(later.items.values_list("state", flat=True)) == {ItemState.FAILED}
            assert all(later.items.values_list("reason", flat=True))
            assert (later.retry_count, later.next_attempt_at, later.secret) == (0, None, None)

            with school:
                assert not YearRecordSignature.objects.filter(
                    record__enrolment__school_class=later_class
                ).exists()
                for record in YearRecord.objects.filter(enrolment__school_class=earlier_class):
                    document = bytes(YearRecordSignature.objects.get(record=record).signed_xml)
                    reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
                    assert [r.problems for r in reports] == [()]
                    assert reports[0].signer == teacher.full_name
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            connection.set_schema_to_public()
            trust.trust_reset()
