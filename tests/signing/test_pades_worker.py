"""A seal batch in a real Celery worker, killed while it seals the PDFs: each record ends with one
sealed PDF, and the PDFs made before the kill are the ones kept.

Everything the worker touches is committed (it is another process), in the signing tests' own
school (tests/signing/world.py): a class of RECORDS records signed by their homeroom teacher and
principal (directly, in this process), the school seal's key file registered by the principal (a
seal holder), the reference TSA (slowed down a little so the PDF phase lasts a few seconds). The
worker is SIGKILLed once it has stored some sealed PDFs and not all; after its lease has run out a
second worker's start-up sweep takes the batch up again: no item is pending, so it seals only the
PDFs still missing (signing.services.pdfs).
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection

from portal.choices import Role
from portal.models import RoleAssignment, User
from signing import timestamps, trust
from signing.models import BatchState, ItemState, SigningBatch
from signing.pades import pdf_signature_report
from signing.services import certificate_register_pkcs12, signing_batch_confirm, signing_batch_start
from tests.conftest import PASSWORD, SIGNING_PIN
from tests.reference.tsa import TsaService
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school
from tests.signing_kit import TITLES, sign_step
from tests.worker import Worker
from transcripts.models import YearRecord, YearRecordPdf, YearRecordStatus

pytestmark = pytest.mark.slow

RECORDS = 6
LEASE_SECONDS = 3


def _world(tag: str, authority):
    """The school, its homeroom teacher and principal, a class of RECORDS records signed by both
    (status signed by the principal: ready for the seal), the seal's key file registered."""
    school = signing_school()
    teacher = homeroom_teacher_for(school, tag)
    principal = User.objects.create_user(
        username=f"t-sign-ht-{tag}",
        password=PASSWORD,
        full_name="Lê Hiệu Trưởng Ký",
        email=f"ht-{tag}@test.local",
    )
    RoleAssignment.objects.create(user=principal, role=Role.PRINCIPAL, school=school)
    school_class = confirmed_class(school, teacher, tag=tag, size=RECORDS)
    keys = {
        "homeroom_teacher": authority.person(teacher.full_name, TITLES["homeroom_teacher"]),
        "principal": authority.person(principal.full_name, TITLES["principal"]),
    }
    with school:
        for record in YearRecord.objects.filter(enrolment__school_class=school_class).order_by("pk"):
            sign_step(
                record, step="homeroom_teacher", actor=teacher, school=school, p12=keys["homeroom_teacher"]
            )
            record.refresh_from_db()
            sign_step(record, step="principal", actor=principal, school=school, p12=keys["principal"])
    connection.set_schema_to_public()
    seal = certificate_register_pkcs12(
        actor=principal, school=school, data=authority.seal(school.name), pin=SIGNING_PIN
    )
    return school, principal, seal, school_class


def test_a_worker_killed_while_sealing_the_pdfs_leaves_each_record_one_sealed_pdf(
    settings, signing_trust, django_db_setup, django_db_blocker, tmp_path
):
    tag = uuid.uuid4().hex[:6]
    queue = f"test-sealing-{tag}"
    tsa = TsaService(tmp_path / "tsa", delay_ms=250)  # each PDF waits for two tokens
    env = {
        "HOCBA_TRUST_ROOTS": str(signing_trust.roots_file),
        "HOCBA_TRUST_CRLS": f"{signing_trust.crl_file},{tsa.crl_url}",
        "HOCBA_TSA_URL": tsa.url,
        "HOCBA_TSA_TRUST_ROOTS": str(tsa.roots_file),
        "HOCBA_CSC_URL": "",
        "HOCBA_SIGNING_QUEUE": queue,
        "HOCBA_SIGNING_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    settings.HOCBA_TRUST_CRLS = [str(signing_trust.crl_file), tsa.crl_url]
    settings.HOCBA_TSA_URL, settings.HOCBA_TSA_TRUST_ROOTS = tsa.url, [str(tsa.roots_file)]
    settings.HOCBA_SIGNING_QUEUE = queue
    trust.trust_reset()
    timestamps.timestamper_reset()
    log = tmp_path / "worker.log"
    first = second = None
    with django_db_blocker.unblock():
        try:
            school, principal, seal, school_class = _world(tag, signing_trust)
            with school:
                batch = signing_batch_start(
                    actor=principal, school=school, step="seal", certificate=seal, school_class=school_class
                )
                pks = list(
                    YearRecord.objects.filter(enrolment__school_class=school_class).values_list(
                        "pk", flat=True
                    )
                )
            assert len(pks) == RECORDS
            first = Worker(queue=queue, log=log, env=env).start()
            signing_batch_confirm(actor=principal, school=school, batch=batch, pin=SIGNING_PIN)

            def sealed() -> dict[int, str]:
                with school:
                    return dict(
                        YearRecordPdf.objects.filter(record_id__in=pks).values_list("record_id", "sha256")
                    )

            deadline = time.monotonic() + 120
            while len(sealed()) < 2 and time.monotonic() < deadline:
                assert first.alive(), first.output()
                time.sleep(0.05)
            first.kill()
            before = sealed()
            assert 0 < len(before) < RECORDS, f"killed after {len(before)} PDFs: not during the PDF phase"
            # The items were all done before the PDFs began; the batch is still running.
            assert set(batch.items.values_list("state", flat=True)) == {ItemState.DONE}
            assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.RUNNING

            time.sleep(LEASE_SECONDS + 0.5)  # the dead worker's lease runs out
            second = Worker(queue=queue, log=log, env=env).start()
            deadline = time.monotonic() + 120
            while (
                SigningBatch.objects.get(pk=batch.pk).state != BatchState.DONE and time.monotonic() < deadline
            ):
                assert second.alive(), second.output()
                time.sleep(0.2)
            batch.refresh_from_db()
            assert batch.state == BatchState.DONE and batch.secret is None, second.output()

            after = sealed()
            assert sorted(after) == sorted(pks)  # one PDF each (a one-to-one row)
            assert {pk: after[pk] for pk in before} == before  # those made before the kill kept
            with school:
                assert {r.status for r in YearRecord.objects.filter(pk__in=pks)} == {YearRecordStatus.ISSUED}
                for row in YearRecordPdf.objects.filter(record_id__in=pks):
                    assert row.sealed and row.sealed_by == school.name
                    (report,) = pdf_signature_report(
                        bytes(row.pdf),
                        trust_roots=trust.trust_roots(),
                        tsa_roots=trust.tsa_roots(),
                        crls=trust.crls(),
                    )
                    assert report.valid and report.timestamped, report.problems
            connection.set_schema_to_public()
            rest = RECORDS - len(before)
            print(f"killed after {len(before)} of {RECORDS} PDFs; the second worker sealed {rest}")
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            tsa.stop()
            connection.set_schema_to_public()
            trust.trust_reset()
            timestamps.timestamper_reset()
