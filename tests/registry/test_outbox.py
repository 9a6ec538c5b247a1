"""The outbox to the Ministry: written with the issue, the correction and the revocation, guarded by
the database, replayed only by the Department's administrators."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from portal.models import AuditEntry
from registry.choices import MessageKind, OutboxState
from registry.forwarding import personal_ids_resolve
from registry.models import OutboxMessage
from registry.services import outbox_issued, outbox_replay, outbox_replay_all
from schools.models import Student
from tests.signing_kit import issue
from transcripts import hooks
from transcripts.records.services import (
    year_record_correct,
    year_record_correction_approve,
    year_record_document,
    year_record_revoke,
    year_records_create,
)

K = MessageKind
S = OutboxState


def _issue(record, homeroom_teacher, principal, school):
    record = issue(record, homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    return record, year_record_document(record)


def test_issuing_writes_a_submit_keyed_by_the_sealed_documents_hash(
    homeroom_teacher, principal, school, records
):
    record, sealed = _issue(records[0], homeroom_teacher, principal, school)
    message = OutboxMessage.objects.get(record_id=record.record_id)
    assert (message.kind, message.version, message.state) == (K.SUBMIT, 1, S.PENDING)
    assert message.idempotency_key == hashlib.sha256(sealed).hexdigest()
    assert bytes(message.document) == sealed
    assert message.personal_id == record.enrolment.student.personal_id
    assert message.school == school and message.replaces_version is None
    assert message.next_attempt_at is not None and message.next_attempt_at <= timezone.now()
    # The record itself stays "issued" until the relay has handed it over.
    record.refresh_from_db()
    assert record.status == "issued"


def test_a_record_not_yet_issued_has_no_message(homeroom_teacher, principal, school, records):
    assert not OutboxMessage.objects.exists()


def test_an_issue_that_rolls_back_leaves_no_message(homeroom_teacher, principal, school, records):
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
        assert OutboxMessage.objects.count() == 1  # written in the issuing transaction...
        raise Abort
    assert not OutboxMessage.objects.exists()  # ...and gone with it


def test_a_correction_is_a_replace_naming_the_version_it_supersedes(
    homeroom_teacher, principal, school, records
):
    record, _ = _issue(records[0], homeroom_teacher, principal, school)
    draft = year_record_correct(actor=homeroom_teacher, school=school, record=record, reason="Sai ngày sinh")
    draft = year_record_correction_approve(actor=principal, school=school, record=draft)
    _v2, sealed = _issue(draft, homeroom_teacher, principal, school)
    messages = list(OutboxMessage.objects.filter(record_id=record.record_id).order_by("pk"))
    assert [(m.kind, m.version, m.replaces_version) for m in messages] == [
        (K.SUBMIT, 1, None),
        (K.REPLACE, 2, 1),
    ]
    assert messages[1].idempotency_key == hashlib.sha256(sealed).hexdigest()


def test_a_revocation_is_a_cancel_after_the_versions_own_message(
    homeroom_teacher, principal, school, records
):
    record, _ = _issue(records[0], homeroom_teacher, principal, school)
    year_record_revoke(actor=principal, school=school, record=record, reason="Cấp nhầm")
    cancel = OutboxMessage.objects.get(record_id=record.record_id, kind=K.CANCEL)
    assert (cancel.version, cancel.state, cancel.reason) == (1, S.PENDING, "Cấp nhầm")
    assert cancel.document is None
    assert cancel.idempotency_key == hashlib.sha256(f"cancel\n{record.record_id}\n1".encode()).hexdigest()


def test_revoking_a_version_never_issued_sends_nothing(homeroom_teacher, principal, school, records):
    year_record_revoke(actor=principal, school=school, record=records[0], reason="Nhầm")
    assert not OutboxMessage.objects.exists()


@pytest.fixture
def records_one_without_personal_id(homeroom_teacher, school, approved_class):
    """The class's records, the first student having only a temporary code when they were made."""
    school_class, enrolments = approved_class
    connection.set_tenant(school)
    for enrolment in enrolments:
        Student.objects.filter(pk=enrolment.student_id).update(
            personal_id=None, temporary_code=f"TAM-{enrolment.student_id}"
        )
    created = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class).created
    created = sorted(created, key=lambda r: r.enrolment.number)
    return created, created[0].enrolment.student


def test_a_record_without_a_personal_id_waits_and_goes_once_the_number_is_verified(
    homeroom_teacher, principal, school, records_one_without_personal_id
):
    records, student = records_one_without_personal_id
    record, _ = _issue(records[0], homeroom_teacher, principal, school)
    message = OutboxMessage.objects.get(record_id=record.record_id)
    assert (message.state, message.personal_id) == (S.WAITING_PERSONAL_ID, None)

    connection.set_schema_to_public()
    assert personal_ids_resolve() == 0  # still no number: still waiting
    connection.set_tenant(school)
    Student.objects.filter(pk=student.pk).update(personal_id="001215000123", temporary_code="")
    connection.set_schema_to_public()
    assert personal_ids_resolve() == 1
    message.refresh_from_db()
    assert (message.state, message.personal_id) == (S.PENDING, "001215000123")


def test_revoking_a_version_that_never_left_marks_both_messages_not_sent(
    homeroom_teacher, principal, school, records_one_without_personal_id
):
    records, _ = records_one_without_personal_id
    record, _ = _issue(records[0], homeroom_teacher, principal, school)
    year_record_revoke(actor=principal, school=school, record=record, reason="Cấp nhầm")
    states = dict(OutboxMessage.objects.filter(record_id=record.record_id).values_list("kind", "state"))
    assert states == {K.SUBMIT: S.VOID, K.CANCEL: S.VOID}


# --- The database's guard ------------------------------------------------------------------------


@pytest.fixture
def message(homeroom_teacher, principal, school, records):
    _issue(records[0], homeroom_teacher, principal, school)
    connection.set_schema_to_public()
    return OutboxMessage.objects.get()


@pytest.mark.parametrize(
    "change",
    [
        {"idempotency_key": "0" * 64},
        {"record_id": "x.y.2025-2026"},
        {"version": 2},
        {"kind": "replace", "replaces_version": 1},
        {"student_code": "HS9"},
        {"document": b"<other/>"},
        {"created_at": timezone.now()},
    ],
    ids=lambda change: next(iter(change)),
)
def test_what_a_message_says_never_changes_even_in_sql(message, change):
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(**change)


def test_a_message_is_never_deleted(message):
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM registry_outboxmessage WHERE id = %s", [message.pk])


def test_the_document_is_dropped_only_once_acknowledged_and_that_is_final(message):
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(document=None)
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=S.ACKNOWLEDGED, receipt_id="R-1", document=None, decided_at=timezone.now()
    )
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(state=S.PENDING)


def test_nothing_goes_without_a_personal_id_nor_sent_without_a_receipt(message):
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(state=S.SENT)  # no receipt
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxMessage.objects.create(
            school=message.school,
            record_id="a.b.2025-2026",
            version=1,
            kind=K.SUBMIT,
            idempotency_key="a" * 64,
            document=b"<x/>",
            student_code="b",
            state=S.PENDING,  # but no personal ID
        )


# --- Replay ------------------------------------------------------------------------------------


def test_only_the_departments_administrators_replay_and_only_dead_letters(
    message, principal, department_officer, department_admin
):
    with pytest.raises(PermissionDenied):
        outbox_replay(actor=principal, message=message)
    with pytest.raises(PermissionDenied):
        outbox_replay(actor=department_officer, message=message)
    with pytest.raises(ValidationError):
        outbox_replay(actor=department_admin, message=message)  # pending: not a dead letter

    OutboxMessage.objects.filter(pk=message.pk).update(state=S.DEAD, attempts=20, last_error="HTTP 503")
    replayed = outbox_replay(actor=department_admin, message=message)
    assert (replayed.state, replayed.attempts) == (S.PENDING, 0)
    entry = AuditEntry.objects.get(action="ministry_message_replayed")
    assert entry.actor == department_admin and entry.school == message.school


def test_replaying_all_dead_letters_is_one_audited_act(message, department_admin):
    OutboxMessage.objects.filter(pk=message.pk).update(state=S.DEAD, attempts=20)
    assert outbox_replay_all(actor=department_admin) == 1
    assert outbox_replay_all(actor=department_admin) == 0
    assert AuditEntry.objects.filter(action="ministry_message_replayed").count() == 1


# --- Records issued before forwarding was switched on ---------------------------------------------


@pytest.fixture
def forwarding_off():
    """Issue as a deployment did before registry forwarded anything (no RECORD_ISSUED hook)."""
    hooks.register(hooks.RECORD_ISSUED, lambda **kwargs: None)
    try:
        yield
    finally:
        hooks.register(hooks.RECORD_ISSUED, outbox_issued)


def test_the_backfill_queues_versions_issued_before_forwarding_once(
    forwarding_off, homeroom_teacher, principal, school, records
):
    sealed = {}
    for record in records:
        record, document = _issue(record, homeroom_teacher, principal, school)
        sealed[record.record_id] = document
    connection.set_schema_to_public()
    assert not OutboxMessage.objects.exists()

    out = io.StringIO()
    call_command("forward_backfill", stdout=out)
    assert "2 issued versions queued" in out.getvalue()
    messages = {m.record_id: m for m in OutboxMessage.objects.all()}
    assert set(messages) == set(sealed)
    for record_id, message in messages.items():
        assert (message.kind, message.state) == (K.SUBMIT, S.PENDING)
        assert message.idempotency_key == hashlib.sha256(sealed[record_id]).hexdigest()

    call_command("forward_backfill", stdout=io.StringIO())  # again: nothing more
    assert OutboxMessage.objects.count() == 2
