# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Batches signed in chunks (issue 13): one transaction and one call to the key per chunk, each
record's outcome still its own and recorded once.

The batch job's body runs here, in the test's process and transaction (as in test_batches.py);
the reference CSC and TSA services are real processes over HTTP. test_batch_worker.py kills a
real worker in the middle of a chunk.
"""

from __future__ import annotations

import datetime as dt
import socket

from django.db import connection
from django.utils import timezone

from portal.models import AuditEntry, IssuedRecord
from signing import trust
from signing.backends.csc import CscClient
from signing.models import BatchState, ItemState, SigningBatch
from signing.services import signing_batch_confirm, signing_batch_start
from signing.verify import verify_year_record
from tests.signing.test_batch_backends import csc, principal_remote, remote_signing  # noqa: F401
from tests.signing.test_batches import (  # noqa: F401
    confirmed,
    run,
    start_and_run,
    states,
    teacher_batch,
    teacher_signs,
    totp_code,
    two_factor,
)
from tests.signing.test_csc import signhash_calls
from tests.signing_kit import PIN
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecord, YearRecordEvent, YearRecordSignature, YearRecordStatus
from transcripts.records.services import year_record_revoke

S = YearRecordStatus


def test_a_record_in_the_wrong_state_fails_alone_and_the_rest_of_its_chunk_is_signed_once(
    homeroom_teacher, principal, school, confirmed, certificates, approved_class, settings
):
    settings.HOCBA_SIGNING_CHUNK = 20  # both records in one chunk
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    year_record_revoke(actor=principal, school=school, record=confirmed[0], reason="Nhầm học sinh")
    assert run(batch) == "done"

    failed, done = batch.items.order_by("position")
    assert (failed.state, done.state) == (ItemState.FAILED, ItemState.DONE)
    assert "Revoked" in failed.reason or "thu hồi" in failed.reason.lower()
    assert (failed.attempts, done.attempts) == (1, 1)
    assert failed.finished_at is not None and done.finished_at is not None
    assert not YearRecordSignature.objects.filter(record=confirmed[0]).exists()
    assert YearRecord.objects.get(pk=confirmed[0].pk).status == S.REVOKED
    signature = YearRecordSignature.objects.get(record=confirmed[1])
    assert signature.batch_item_pk == done.pk and signature.position == 1
    signed = YearRecord.objects.get(pk=confirmed[1].pk)
    assert signed.status == S.SIGNED_HOMEROOM
    assert list(
        YearRecordEvent.objects.filter(record=signed, to_status=S.SIGNED_HOMEROOM).values_list(
            "from_status", "note"
        )
    ) == [(S.CONFIRMED, certificates["homeroom_teacher"].subject_name)]
    audits = AuditEntry.objects.filter(action="year_record_signed", school=school)
    assert list(audits.values_list("object_id", flat=True)) == [str(signed.pk)]
    assert audits.get().changes["status"] == [S.CONFIRMED, S.SIGNED_HOMEROOM]
    reports = verify_year_record(
        bytes(signature.signed_xml), trust_roots=trust.trust_roots(), crls=trust.crls()
    )
    assert [r.problems for r in reports] == [()]


def test_a_record_whose_writes_the_database_refuses_fails_alone_and_the_others_are_issued(
    homeroom_teacher, principal, school_admin, school, confirmed, certificates, two_factor, approved_class
):
    """The seal issues both records in one chunk; the public index already holds the first one's
    version (a unique constraint refuses a second row): its writes roll back alone, with the
    reason, and the second record is issued."""
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    start_and_run(
        actor=principal,
        school=school,
        step="principal",
        certificate=certificates["principal"],
        totp=totp_code(principal),
    )
    first = YearRecord.objects.get(pk=confirmed[0].pk)
    now = timezone.now()
    connection.set_schema_to_public()
    IssuedRecord.objects.create(
        school=school,
        school_year="2025-2026",
        record_id=first.record_id,
        version=first.version,
        sha256="0" * 64,
        status="issued",
        issued_at=now,
        status_changed_at=now,
        student_code="X",
        verification_code="ABCDEFGHJKMNPQRS",
    )
    connection.set_tenant(school)
    sealed = start_and_run(actor=school_admin, school=school, step="seal", certificate=certificates["seal"])

    refused, issued = sealed.items.order_by("position")
    assert (refused.state, issued.state) == (ItemState.FAILED, ItemState.DONE)
    assert "issued_record_version_unique" in refused.reason
    assert YearRecord.objects.get(pk=confirmed[0].pk).status == S.SIGNED_PRINCIPAL
    assert not YearRecordSignature.objects.filter(record=confirmed[0], position=3).exists()
    assert YearRecord.objects.get(pk=confirmed[1].pk).status == S.ISSUED
    assert YearRecordSignature.objects.get(record=confirmed[1], position=3).batch_item_pk == issued.pk
    connection.set_schema_to_public()
    assert IssuedRecord.objects.get(record_id=confirmed[1].record_id).sha256 != "0" * 64
    assert IssuedRecord.objects.get(record_id=first.record_id).sha256 == "0" * 64  # left as it was
    sealed_audits = AuditEntry.objects.filter(
        action="year_record_signed", school=school, changes__position=3
    ).values_list("object_id", flat=True)
    assert list(sealed_audits) == [str(confirmed[1].pk)]
    connection.set_tenant(school)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tsa_outage_during_a_chunk_leaves_nothing_half_written_and_the_batch_pauses(
    homeroom_teacher, school, confirmed, certificates, approved_class, settings, timestamping
):
    """The key signs the chunk, then the TSA cannot be reached: the whole chunk rolls back (no
    signature, no status change, no event, no audit row, items pending) and the batch pauses; once
    the TSA answers, the next run signs every record once, each signature timestamped."""
    from signing.timestamps import timestamper_reset

    school_class, _ = approved_class
    settings.HOCBA_SIGNING_CHUNK = 20
    settings.HOCBA_TSA_URL = f"http://127.0.0.1:{_closed_port()}/"
    timestamper_reset()
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    assert run(batch) == "paused"

    paused = SigningBatch.objects.get(pk=batch.pk)
    assert paused.state == BatchState.QUEUED and paused.retry_count == 1
    assert paused.next_attempt_at is not None and paused.lease_owner == ""
    assert states(batch) == [ItemState.PENDING, ItemState.PENDING]
    assert set(batch.items.values_list("attempts", flat=True)) == {0}
    assert not YearRecordSignature.objects.filter(record__in=confirmed).exists()
    assert {r.status for r in YearRecord.objects.filter(pk__in=[r.pk for r in confirmed])} == {S.CONFIRMED}
    assert not YearRecordEvent.objects.filter(record__in=confirmed, to_status=S.SIGNED_HOMEROOM).exists()
    assert not AuditEntry.objects.filter(action="year_record_signed", school=school).exists()

    settings.HOCBA_TSA_URL = timestamping.url  # the TSA answers again; the attempt is due
    timestamper_reset()
    SigningBatch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert run(batch) == "done"
    assert states(batch) == [ItemState.DONE, ItemState.DONE]
    resumed = SigningBatch.objects.get(pk=batch.pk)
    assert resumed.retry_count == 0 and resumed.next_attempt_at is None
    for record in confirmed:
        signature = YearRecordSignature.objects.get(record=record)
        document = bytes(signature.signed_xml)
        assert document.count(b"SignatureTimeStamp") >= 1
        reports = verify_year_record(
            document, trust_roots=trust.trust_roots(), crls=trust.crls(), tsa_roots=trust.tsa_roots()
        )
        assert [r.problems for r in reports] == [()]
    assert AuditEntry.objects.filter(action="year_record_signed", school=school).count() == 2


def test_a_remote_batch_signs_its_chunk_with_one_signhash_call(
    homeroom_teacher,
    principal,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
    csc,
    principal_remote,
    settings,
):
    school_class, _ = approved_class
    settings.HOCBA_SIGNING_CHUNK = 20
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    batch = signing_batch_start(
        actor=principal, school=school, step="principal", certificate=principal_remote
    )
    otp = csc.otp_for(principal_remote.csc_credential_id)
    signing_batch_confirm(actor=principal, school=school, batch=batch, otp=otp, totp=totp_code(principal))
    client = CscClient(csc.url, csc.client_secret)
    outcome: list[str] = []
    assert signhash_calls(csc, client, lambda: outcome.append(run(batch))) == 1
    assert outcome == ["done"] and states(batch) == [ItemState.DONE, ItemState.DONE]
    for record in confirmed:
        assert YearRecord.objects.get(pk=record.pk).status == S.SIGNED_PRINCIPAL


def test_a_tsa_outage_costs_a_remote_approval_one_chunk_and_no_more(
    homeroom_teacher,
    principal,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
    csc,
    principal_remote,
    timestamping,
    settings,
):
    """Through a remote key the service counts a chunk's signHash even when the TSA then fails and
    the chunk rolls back. The approval covers the records plus one chunk; after a pause the TSA is
    asked first, so while it is still down a retry spends nothing, and the batch finishes with its
    approval once the TSA is back."""
    from signing.timestamps import timestamper_reset

    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    batch = signing_batch_start(
        actor=principal, school=school, step="principal", certificate=principal_remote
    )
    otp = csc.otp_for(principal_remote.csc_credential_id)
    signing_batch_confirm(actor=principal, school=school, batch=batch, otp=otp, totp=totp_code(principal))
    # The approval: the 2 records and a spare of one chunk (here the 2 records): 4 signatures.
    settings.HOCBA_TSA_URL = f"http://127.0.0.1:{_closed_port()}/"
    timestamper_reset()
    client = CscClient(csc.url, csc.client_secret)
    outcome: list[str] = []

    def due() -> None:
        SigningBatch.objects.filter(pk=batch.pk).update(
            next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
        )

    assert signhash_calls(csc, client, lambda: outcome.append(run(batch))) == 1  # 2 signatures spent
    due()
    assert signhash_calls(csc, client, lambda: outcome.append(run(batch))) == 0  # the TSA asked first
    assert outcome == ["paused", "paused"]
    assert SigningBatch.objects.get(pk=batch.pk).retry_count == 2
    assert states(batch) == [ItemState.PENDING, ItemState.PENDING]
    assert not YearRecordSignature.objects.filter(record__in=confirmed, position=2).exists()

    settings.HOCBA_TSA_URL = timestamping.url
    timestamper_reset()
    due()
    assert signhash_calls(csc, client, lambda: outcome.append(run(batch))) == 2  # one item, then the rest
    assert outcome[-1] == "done" and states(batch) == [ItemState.DONE, ItemState.DONE]
    for record in confirmed:
        document = bytes(YearRecordSignature.objects.get(record=record, position=2).signed_xml)
        reports = verify_year_record(
            document, trust_roots=trust.trust_roots(), crls=trust.crls(), tsa_roots=trust.tsa_roots()
        )
        assert [r.problems for r in reports] == [(), ()]
