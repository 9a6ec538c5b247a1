# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Memberships that end (issue 14): a contract teacher signs while their role in the school lasts,
nothing after it, and what they signed before stays valid.

The clock is not moved: an end date is set relative to timezone.localdate() (today: still in
force; yesterday: over), and the batch runner takes `now` for the moment a worker takes the batch
up (the day after the end date).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext, override

from portal.choices import AuditAction
from portal.models import AuditEntry, RoleAssignment
from portal.permissions import forget_access
from portal.services import role_assignments_expire
from signing import trust
from signing.models import BatchState, ItemState, SigningBatch, SigningBatchItem
from signing.services import (
    certificate_register_pkcs12,
    signing_batch_confirm,
    signing_batch_retry,
    signing_batch_run,
)
from signing.verify import all_valid, verify_year_record
from tests.conftest import SIGNING_PIN
from tests.signing.test_batches import WORKER, confirmed, states, teacher_batch  # noqa: F401
from tests.signing_kit import PIN, issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecordSignature
from transcripts.permissions import can_sign
from transcripts.records.services import year_record_document

TZ = timezone.get_default_timezone()


def membership_ends(user, school, last_day: dt.date | None) -> None:
    """Give the user's roles in the school this end date (a contract, a semester)."""
    connection.set_schema_to_public()
    RoleAssignment.objects.filter(user=user, school=school, revoked_at__isnull=True).update(
        valid_until=last_day
    )
    forget_access(user)
    connection.set_tenant(school)


def today() -> dt.date:
    return timezone.localdate()


def start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=TZ)


def run_at(batch, now: dt.datetime | None = None) -> str:
    connection.set_schema_to_public()
    outcome = signing_batch_run(batch_pk=batch.pk, worker=WORKER, now=now)
    connection.set_tenant(batch.school)
    return outcome


def test_a_batch_carries_the_moment_its_signers_membership_ends_and_signs_before_it(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    membership_ends(homeroom_teacher, school, today())
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)

    deadline = start_of(today() + dt.timedelta(days=1))
    assert set(batch.items.values_list("sign_before", flat=True)) == {deadline}
    started = AuditEntry.objects.get(action=AuditAction.SIGNING_BATCH_STARTED, object_id=str(batch.pk))
    assert started.changes["sign_before"] == deadline.isoformat()
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    run_at(batch)
    assert states(batch) == [ItemState.DONE, ItemState.DONE]


def test_a_batch_without_an_end_date_carries_none(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    assert set(batch.items.values_list("sign_before", flat=True)) == {None}


def test_a_batch_started_before_the_end_date_signs_nothing_after_it(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    membership_ends(homeroom_teacher, school, today())
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)

    # A worker takes the batch up the morning after the teacher's last day.
    outcome = run_at(batch, now=start_of(today() + dt.timedelta(days=1)) + dt.timedelta(hours=8))

    assert outcome == "done"  # finished with its failures: not paused, not retried
    batch = SigningBatch.objects.get(pk=batch.pk)
    assert batch.state == BatchState.DONE and batch.next_attempt_at is None
    assert states(batch) == [ItemState.FAILED, ItemState.FAILED]
    last_day = today().strftime("%d/%m/%Y")
    assert all(last_day in item.reason and "đã kết thúc" in item.reason for item in batch.items.all())
    assert not YearRecordSignature.objects.filter(record__in=confirmed).exists()


def test_the_reason_is_said_in_vietnamese(homeroom_teacher, school, confirmed, certificates, approved_class):
    school_class, _ = approved_class
    membership_ends(homeroom_teacher, school, today())
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    with override("vi"):
        run_at(batch, now=start_of(today() + dt.timedelta(days=2)))
    reason = batch.items.first().reason
    assert reason.startswith("Vai trò của bạn ở trường này đã kết thúc ngày " + today().strftime("%d/%m/%Y"))


def test_the_database_refuses_an_item_marked_signed_at_or_after_the_membership_end(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    membership_ends(homeroom_teacher, school, today())
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    item = batch.items.first()
    connection.set_schema_to_public()

    with (
        pytest.raises(IntegrityError, match="signing_item_signed_before_membership_end"),
        transaction.atomic(),
    ):
        SigningBatchItem.objects.filter(pk=item.pk).update(state=ItemState.DONE, finished_at=item.sign_before)
    with (
        pytest.raises(IntegrityError, match="signing_item_signed_before_membership_end"),
        transaction.atomic(),
    ):
        SigningBatchItem.objects.filter(pk=item.pk).update(state=ItemState.DONE, finished_at=None)
    # Signed a second before the end: accepted.
    SigningBatchItem.objects.filter(pk=item.pk).update(
        state=ItemState.DONE, finished_at=item.sign_before - dt.timedelta(seconds=1)
    )


def test_rights_to_sign_are_gone_the_day_after_the_end_date(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    membership_ends(homeroom_teacher, school, today())
    assert can_sign(homeroom_teacher, school, school_class, "homeroom_teacher")

    membership_ends(homeroom_teacher, school, today() - dt.timedelta(days=1))
    assert not can_sign(homeroom_teacher, school, school_class, "homeroom_teacher")
    with pytest.raises(PermissionDenied):
        teacher_batch(homeroom_teacher, school, certificates, school_class)


def test_a_batch_run_after_the_role_ended_fails_its_items_with_a_reason_and_cannot_be_signed_again(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    membership_ends(homeroom_teacher, school, today() - dt.timedelta(days=1))

    assert run_at(batch) == "done"
    assert states(batch) == [ItemState.FAILED, ItemState.FAILED]
    assert all(item.reason for item in batch.items.all())
    with pytest.raises(PermissionDenied):
        signing_batch_retry(actor=homeroom_teacher, school=school, batch=batch)
    assert SigningBatch.objects.filter(signer=homeroom_teacher).count() == 1


def test_a_certificate_cannot_be_registered_once_every_membership_has_ended(
    homeroom_teacher, school, signing_trust
):
    from tests.signing_kit import TITLES

    data = signing_trust.person(homeroom_teacher.full_name, TITLES["homeroom_teacher"])
    membership_ends(homeroom_teacher, school, today() - dt.timedelta(days=1))
    connection.set_schema_to_public()
    with pytest.raises(PermissionDenied, match="không có vai trò ở trường nào"):
        certificate_register_pkcs12(actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN)

    membership_ends(homeroom_teacher, school, today())
    connection.set_schema_to_public()
    registered = certificate_register_pkcs12(
        actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=SIGNING_PIN
    )
    assert registered.user == homeroom_teacher


def test_earlier_signatures_stay_valid_after_the_membership_ended_and_expired(
    homeroom_teacher, principal, school, records, client
):
    membership_ends(homeroom_teacher, school, today())
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    document = year_record_document(record)

    membership_ends(homeroom_teacher, school, today() - dt.timedelta(days=1))
    connection.set_schema_to_public()
    assert role_assignments_expire(today=today()) >= 1  # other tests' committed roles may expire too
    assert not RoleAssignment.objects.current().filter(user=homeroom_teacher).exists()
    assert RoleAssignment.objects.get(user=homeroom_teacher, school=school).revoked_at is not None

    reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
    assert all_valid(reports), [r.problems for r in reports]
    assert reports[0].signer == homeroom_teacher.full_name

    from portal.models import IssuedRecord

    page = client.get(IssuedRecord.objects.get(record_id=record.record_id).get_absolute_url())
    assert page.status_code == 200
    with override("vi"):
        valid = escape(gettext("Valid: signature and certificate verified"))
    assert page.content.decode().count(valid) == 3


def test_the_certificate_page_says_until_when_a_contract_teacher_signs(
    homeroom_teacher, school, certificates, client_as
):
    last_day = today() + dt.timedelta(days=10)
    membership_ends(homeroom_teacher, school, last_day)
    connection.set_schema_to_public()
    page = client_as(homeroom_teacher).get(reverse("signing_account:certificates"), HTTP_ACCEPT_LANGUAGE="vi")
    assert page.status_code == 200
    text = page.content.decode()
    date = last_day.strftime("%d/%m/%Y")
    assert f"ký được đến hết ngày {date} tại {escape(school.name)}" in text  # beside the certificate
    assert f"Tại {escape(school.name)}, bạn ký được đến hết ngày {date}" in text  # above the list


def test_a_contract_teacher_without_a_certificate_yet_is_told_until_when_they_can_sign(
    homeroom_teacher, school, client_as
):
    last_day = today() + dt.timedelta(days=3)
    membership_ends(homeroom_teacher, school, last_day)
    connection.set_schema_to_public()
    page = client_as(homeroom_teacher).get(reverse("signing_account:certificates"), HTTP_ACCEPT_LANGUAGE="vi")
    assert page.context["certificates"] == []
    assert f"bạn ký được đến hết ngày {last_day.strftime('%d/%m/%Y')}" in page.content.decode()


def test_the_certificate_page_says_nothing_of_an_end_for_a_member_without_one(
    principal, school, certificates, client_as
):
    page = client_as(principal).get(reverse("signing_account:certificates"), HTTP_ACCEPT_LANGUAGE="vi")
    assert page.status_code == 200
    assert "ký được đến hết ngày" not in page.content.decode()


def test_a_batch_cannot_be_confirmed_once_the_signers_role_has_ended(
    homeroom_teacher, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    membership_ends(homeroom_teacher, school, today())
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    membership_ends(homeroom_teacher, school, today() - dt.timedelta(days=1))
    with pytest.raises(PermissionDenied):
        signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    batch.refresh_from_db()
    assert (batch.state, batch.secret) == (BatchState.AWAITING_CONFIRMATION, None)
