# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Every refusal of a signing batch, triggered alone, with its reason (issue 9, finding 14).

Each test meets one guard and nothing else: the data is right in every other respect, so the
test fails if that one guard is removed, and the exact message says it was this guard that spoke.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import override

from portal.models import AuditEntry
from signing import trust
from signing.backends import KeyLoadError
from signing.models import BatchState, ItemState, SigningBatch
from signing.services import (
    certificate_register_pkcs12,
    certificate_remove,
    signing_batch_cancel,
    signing_batch_confirm,
    signing_batch_otp_resend,
    signing_batch_retry,
    signing_batch_start,
)
from tests.conftest import SIGNING_PIN
from tests.signing.test_batches import (  # noqa: F401
    confirmed,
    run,
    states,
    teacher_batch,
    teacher_signs,
    totp_code,
    two_factor,
)
from tests.signing_kit import PIN
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401


def refused(error_type, call) -> str:
    """The reason of a refusal, in English (the msgid), and that it was this kind of refusal."""
    with override("en"), pytest.raises(error_type) as caught:
        call()
    error = caught.value
    return " ".join(error.messages) if isinstance(error, ValidationError) else str(error)


@pytest.fixture
def batch(homeroom_teacher, school, confirmed, certificates, approved_class):
    """The homeroom teacher's batch over 8A, waiting for its confirmation."""
    school_class, _ = approved_class
    return teacher_batch(homeroom_teacher, school, certificates, school_class)


# --- Starting a batch -----------------------------------------------------------------------------


def test_an_unknown_signing_step_is_refused(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    reason = refused(
        ValidationError,
        lambda: signing_batch_start(
            actor=homeroom_teacher,
            school=school,
            step="notary",
            certificate=certificates["homeroom_teacher"],
            school_class=school_class,
        ),
    )
    assert reason == "Unknown signing step."


def test_the_homeroom_teacher_cannot_start_a_batch_over_the_whole_school(
    homeroom_teacher, school, confirmed, certificates
):
    reason = refused(
        ValidationError,
        lambda: signing_batch_start(
            actor=homeroom_teacher,
            school=school,
            step="homeroom_teacher",
            certificate=certificates["homeroom_teacher"],
        ),
    )
    assert reason == "The homeroom teacher signs one class at a time."


def test_a_subject_teacher_cannot_start_the_homeroom_teachers_batch(
    subject_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_start(
            actor=subject_teacher,
            school=school,
            step="homeroom_teacher",
            certificate=certificates["homeroom_teacher"],
            school_class=school_class,
        ),
    )
    assert reason == "You may not sign this step of these year records."


def test_a_signer_cannot_start_a_batch_with_a_colleagues_certificate(
    homeroom_teacher, vice_principal, school, confirmed, certificates, approved_class, signing_keys
):
    school_class, _ = approved_class
    # The vice-principal's own certificate, used by the homeroom teacher: the role is right, the
    # records are waiting, the certificate is valid; only its holder is wrong.
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_start(
            actor=homeroom_teacher,
            school=school,
            step="homeroom_teacher",
            certificate=certificates["vice_principal"],
            school_class=school_class,
        ),
    )
    assert reason == "This certificate cannot sign for you here."


def test_the_seal_of_another_school_cannot_seal_this_schools_records(
    school_admin, other_school_admin, school, other_school, signing_trust
):
    connection.set_schema_to_public()
    other_seal = certificate_register_pkcs12(
        actor=other_school_admin,
        school=other_school,
        data=signing_trust.seal(other_school.name),
        pin=SIGNING_PIN,
    )
    connection.set_tenant(school)
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_start(actor=school_admin, school=school, step="seal", certificate=other_seal),
    )
    assert reason == "This certificate cannot sign for you here."


def test_a_removed_certificate_cannot_start_a_batch(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    certificate_remove(actor=homeroom_teacher, certificate=certificates["homeroom_teacher"])
    reason = refused(
        PermissionDenied, lambda: teacher_batch(homeroom_teacher, school, certificates, school_class)
    )
    assert reason == "This certificate cannot sign for you here."


def test_a_certificate_revoked_since_its_registration_cannot_start_a_batch(
    homeroom_teacher, school, confirmed, certificates, approved_class, signing_trust
):
    school_class, _ = approved_class
    cert = x509.load_der_x509_certificate(bytes(certificates["homeroom_teacher"].certificate))
    signing_trust.revoke(cert)
    try:
        reason = refused(
            ValidationError, lambda: teacher_batch(homeroom_teacher, school, certificates, school_class)
        )
    finally:
        signing_trust.unrevoke_all()
    assert reason == "The certificate has been revoked by the authority that issued it."


def test_a_batch_with_no_record_waiting_for_its_step_is_refused(principal, school, confirmed, certificates):
    reason = refused(
        ValidationError,
        lambda: signing_batch_start(
            actor=principal, school=school, step="principal", certificate=certificates["principal"]
        ),
    )
    assert reason == "No year record is waiting for this signature."


def test_a_batch_lists_the_records_of_its_class_at_its_step_in_class_order(batch, confirmed):
    items = list(batch.items.order_by("position").values_list("record_id", "position"))
    assert items == [(r.record_id, n) for n, r in enumerate(confirmed, start=1)]
    assert batch.state == BatchState.AWAITING_CONFIRMATION
    assert batch.scope_label == "Lớp 8A" or batch.scope_label.endswith("8A")


# --- Confirming -----------------------------------------------------------------------------------


def test_only_the_signer_who_started_a_batch_confirms_it(batch, principal, school):
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_confirm(actor=principal, school=school, batch=batch, pin=PIN),
    )
    assert reason == "Only the signer who started the batch confirms it."


def test_a_batch_is_confirmed_only_in_its_own_school(batch, homeroom_teacher, other_school):
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_confirm(actor=homeroom_teacher, school=other_school, batch=batch, pin=PIN),
    )
    assert reason == "Only the signer who started the batch confirms it."


def test_a_batch_is_confirmed_once(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN),
    )
    assert reason == "This batch has already been confirmed or cancelled."


def test_a_cancelled_batch_cannot_be_confirmed(batch, homeroom_teacher, school):
    signing_batch_cancel(actor=homeroom_teacher, school=school, batch=batch)
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN),
    )
    assert reason == "This batch has already been confirmed or cancelled."


def test_a_key_file_batch_needs_its_pin(batch, homeroom_teacher, school):
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=""),
    )
    assert reason == "Enter the PIN of your key."


def test_a_wrong_pin_is_said_at_confirmation_and_nothing_is_queued(batch, homeroom_teacher, school):
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin="000000"),
    )
    assert reason == "Wrong PIN."
    stored = SigningBatch.objects.get(pk=batch.pk)
    assert (stored.state, stored.secret, stored.confirmed_at) == (
        BatchState.AWAITING_CONFIRMATION,
        None,
        None,
    )


def test_the_homeroom_teachers_confirmation_asks_no_two_factor_code(batch, homeroom_teacher, school):
    confirmed_batch = signing_batch_confirm(
        actor=homeroom_teacher, school=school, batch=batch, pin=PIN, totp=""
    )
    assert confirmed_batch.state == BatchState.QUEUED and confirmed_batch.confirmed_at is not None
    assert trust.open_secret(bytes(SigningBatch.objects.get(pk=batch.pk).secret)) == PIN
    assert AuditEntry.objects.filter(action="signing_batch_confirmed", object_id=str(batch.pk)).count() == 1


@pytest.fixture
def principal_batch(homeroom_teacher, principal, school, confirmed, certificates, approved_class):
    """The principal's batch, once the homeroom teacher has signed 8A."""
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    return signing_batch_start(
        actor=principal, school=school, step="principal", certificate=certificates["principal"]
    )


def test_a_principal_without_an_authenticator_cannot_confirm(principal_batch, principal, school):
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(
            actor=principal, school=school, batch=principal_batch, pin=PIN, totp="1"
        ),
    )
    assert reason == "Set up two-factor authentication before signing as principal."


@pytest.mark.parametrize("code", ["", "   ", "000000"])
def test_a_missing_or_wrong_two_factor_code_is_refused(code, principal_batch, principal, school, two_factor):
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(
            actor=principal, school=school, batch=principal_batch, pin=PIN, totp=code
        ),
    )
    assert reason == "Wrong or already used two-factor code."


def test_a_two_factor_code_typed_with_spaces_is_accepted(principal_batch, principal, school, two_factor):
    code = totp_code(principal)
    spaced = f" {code[:3]} {code[3:]} "
    done = signing_batch_confirm(actor=principal, school=school, batch=principal_batch, pin=PIN, totp=spaced)
    assert done.state == BatchState.QUEUED


def test_a_two_factor_code_confirms_one_batch_only(
    principal_batch, principal, school, certificates, two_factor
):
    code = totp_code(principal)
    signing_batch_confirm(actor=principal, school=school, batch=principal_batch, pin=PIN, totp=code)
    SigningBatch.objects.filter(pk=principal_batch.pk).update(state=BatchState.CANCELLED)
    again = signing_batch_start(
        actor=principal, school=school, step="principal", certificate=certificates["principal"]
    )
    reason = refused(
        ValidationError,
        lambda: signing_batch_confirm(actor=principal, school=school, batch=again, pin=PIN, totp=code),
    )
    assert reason == "Wrong or already used two-factor code."


# --- Asking for a new code, cancelling, signing the failures again --------------------------------


def test_only_the_signer_asks_for_a_new_confirmation_code(batch, principal):
    reason = refused(PermissionDenied, lambda: signing_batch_otp_resend(actor=principal, batch=batch))
    assert reason == "This batch is not waiting for your confirmation."


def test_no_new_code_is_sent_for_a_batch_already_confirmed(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    confirmed_batch = SigningBatch.objects.get(pk=batch.pk)
    reason = refused(
        PermissionDenied, lambda: signing_batch_otp_resend(actor=homeroom_teacher, batch=confirmed_batch)
    )
    assert reason == "This batch is not waiting for your confirmation."


def test_only_the_signer_who_started_a_batch_cancels_it(batch, principal, school):
    reason = refused(
        PermissionDenied, lambda: signing_batch_cancel(actor=principal, school=school, batch=batch)
    )
    assert reason == "Only the signer who started the batch cancels it."
    assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.AWAITING_CONFIRMATION


def test_a_batch_is_cancelled_only_in_its_own_school(batch, homeroom_teacher, other_school):
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_cancel(actor=homeroom_teacher, school=other_school, batch=batch),
    )
    assert reason == "Only the signer who started the batch cancels it."


def test_cancelling_a_batch_twice_records_one_cancellation(batch, homeroom_teacher, school):
    signing_batch_cancel(actor=homeroom_teacher, school=school, batch=batch)
    again = signing_batch_cancel(actor=homeroom_teacher, school=school, batch=batch)
    assert again.state == BatchState.CANCELLED
    assert AuditEntry.objects.filter(action="signing_batch_cancelled", object_id=str(batch.pk)).count() == 1


def test_a_finished_batch_stays_finished_when_cancelled(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    run(batch)
    after = signing_batch_cancel(actor=homeroom_teacher, school=school, batch=batch)
    assert after.state == BatchState.DONE
    assert not AuditEntry.objects.filter(action="signing_batch_cancelled", object_id=str(batch.pk)).exists()


def test_only_the_signer_who_started_a_batch_signs_its_failures_again(batch, principal, school):
    reason = refused(
        PermissionDenied, lambda: signing_batch_retry(actor=principal, school=school, batch=batch)
    )
    assert reason == "Only the signer who started the batch signs it again."


def test_a_batch_is_signed_again_only_in_its_own_school(batch, homeroom_teacher, other_school):
    reason = refused(
        PermissionDenied,
        lambda: signing_batch_retry(actor=homeroom_teacher, school=other_school, batch=batch),
    )
    assert reason == "Only the signer who started the batch signs it again."


def test_a_batch_without_failures_has_nothing_to_sign_again(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    run(batch)
    reason = refused(
        ValidationError, lambda: signing_batch_retry(actor=homeroom_teacher, school=school, batch=batch)
    )
    assert reason == "No failed record of this batch is still waiting for this signature."


# --- The worker's side ----------------------------------------------------------------------------


def test_a_queued_batch_without_its_secret_fails_every_item_and_says_why(batch):
    SigningBatch.objects.filter(pk=batch.pk).update(state=BatchState.QUEUED, confirmed_at=timezone.now())
    with override("en"):
        assert run(batch) == "done"
    reasons = set(batch.items.values_list("reason", flat=True))
    assert reasons == {"The key cannot be used: The batch has no confirmation"}
    assert states(batch) == [ItemState.FAILED, ItemState.FAILED]


def test_an_expired_remote_authorisation_fails_every_item(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    SigningBatch.objects.filter(pk=batch.pk).update(
        secret_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with override("en"):
        run(batch)
    reasons = set(batch.items.values_list("reason", flat=True))
    assert reasons == {"The remote signing authorisation has expired: sign the remaining records again."}


def test_a_certificate_removed_after_confirmation_signs_nothing_and_says_why(
    batch, homeroom_teacher, school, certificates
):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    connection.set_schema_to_public()
    certificate_remove(actor=homeroom_teacher, certificate=certificates["homeroom_teacher"])
    with override("en"):
        run(batch)
    assert set(batch.items.values_list("reason", flat=True)) == {
        "The certificate was removed during the batch."
    }


def test_a_certificate_revoked_after_confirmation_fails_with_the_revocation_said(
    batch, homeroom_teacher, school, certificates, signing_trust
):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    signing_trust.revoke(x509.load_der_x509_certificate(bytes(certificates["homeroom_teacher"].certificate)))
    try:
        with override("en"):
            run(batch)
    finally:
        signing_trust.unrevoke_all()
    assert set(batch.items.values_list("reason", flat=True)) == {
        "The certificate has been revoked by the authority that issued it."
    }


def test_a_batch_leased_by_a_live_worker_is_not_taken_by_another(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING,
        lease_owner="live-worker",
        lease_until=timezone.now() + dt.timedelta(minutes=1),
    )
    assert run(batch) == "not claimed"
    assert states(batch) == [ItemState.PENDING, ItemState.PENDING]


def test_a_batch_whose_lease_ran_out_is_taken_over_and_finished(batch, homeroom_teacher, school):
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING,
        lease_owner="dead-worker",
        lease_until=timezone.now() - dt.timedelta(seconds=1),
    )
    assert run(batch) == "done"
    finished = SigningBatch.objects.get(pk=batch.pk)
    assert (finished.state, finished.lease_owner, finished.lease_until, finished.secret) == (
        BatchState.DONE,
        "",
        None,
        None,
    )
    assert states(batch) == [ItemState.DONE, ItemState.DONE]
    entry = AuditEntry.objects.get(action="signing_batch_finished", object_id=str(batch.pk))
    assert entry.changes == {"done": 2, "failed": 0}


def test_a_batch_waiting_for_its_confirmation_is_not_run(batch):
    assert run(batch) == "not claimed"
    assert states(batch) == [ItemState.PENDING, ItemState.PENDING]


def test_an_items_failure_is_said_by_its_kind():
    """What a failed item says: a refusal's own words, a key's failure by its code, a document
    that cannot be signed, anything else as unexpected."""
    from signing.profile import SigningError
    from signing.services.runner import _error_message

    with override("en"):
        assert _error_message(ValidationError("Not now.")) == "Not now."
        assert _error_message(PermissionDenied("Not you.")) == "Not you."
        assert _error_message(KeyLoadError("wrong_pin", "pin")) == "Wrong PIN."
        assert (
            _error_message(SigningError("complete", "all signed"))
            == "The record cannot be signed: all signed"
        )
        assert _error_message(RuntimeError("boom")) == "Unexpected error: boom"


def test_the_sweep_queues_a_confirmed_batch_no_worker_took_after_half_a_minute(
    batch, homeroom_teacher, school, monkeypatch
):
    from signing.services import runner, signing_batches_resume

    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    queued: list[int] = []
    monkeypatch.setattr(runner, "signing_batch_enqueue", queued.append)
    SigningBatch.objects.filter(pk=batch.pk).update(confirmed_at=timezone.now() - dt.timedelta(seconds=10))
    assert signing_batches_resume() == [] and queued == []  # just confirmed: its job is on its way
    SigningBatch.objects.filter(pk=batch.pk).update(confirmed_at=timezone.now() - dt.timedelta(seconds=40))
    assert signing_batches_resume() == [batch.pk] and queued == [batch.pk]


def test_a_worker_that_lost_its_lease_does_not_finish_the_batch(batch, homeroom_teacher, school):
    from signing.services.runner import _finish

    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    SigningBatch.objects.filter(pk=batch.pk).update(state=BatchState.RUNNING, lease_owner="other-worker")
    assert _finish(batch.pk, "test-worker") == "lease lost"
    SigningBatch.objects.filter(pk=batch.pk).update(state=BatchState.CANCELLED, lease_owner="test-worker")
    assert _finish(batch.pk, "test-worker") == "lease lost"
    assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.CANCELLED


def test_an_expected_refusal_during_a_batch_is_not_logged_as_an_error(
    batch, homeroom_teacher, school, certificates, caplog
):
    """A refusal (here a certificate removed after the confirmation) is the item's reason, said
    to the signer; only an unexpected error goes to the error log with its traceback."""
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    connection.set_schema_to_public()
    certificate_remove(actor=homeroom_teacher, certificate=certificates["homeroom_teacher"])
    with caplog.at_level("ERROR", logger="signing.services.runner"):
        run(batch)
    assert states(batch) == [ItemState.FAILED, ItemState.FAILED]
    assert [r for r in caplog.records if r.name == "signing.services.runner"] == []
