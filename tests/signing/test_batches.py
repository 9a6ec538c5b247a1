# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Certificates registered with their holders, and batches: start, one confirmation, run, refusals.

The batch job's body (signing.services.signing_batch_run) runs here in the test's process and
transaction; test_batch_worker.py runs it in a real Celery worker and kills it half-way.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse
from django.utils.translation import override

from portal.models import AuditEntry, IssuedRecord
from signing import ca
from signing.models import BatchState, ItemState, SigningBatch
from signing.services import (
    certificate_register_pkcs12,
    certificate_remove,
    signing_batch_cancel,
    signing_batch_confirm,
    signing_batch_retry,
    signing_batch_run,
    signing_batch_start,
    signing_batches_resume,
)
from signing.verify import all_valid, verify_year_record
from tests.conftest import SIGNING_PIN
from tests.signing_kit import PIN
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus
from transcripts.records.services import year_record_confirm, year_record_document, year_record_revoke

S = YearRecordStatus
WORKER = "test-worker"


def totp_code(user) -> str:
    from portal.demo import demo_totp_code

    return demo_totp_code(user.username)


@pytest.fixture
def two_factor(principal, vice_principal):
    """The leaders' authenticator apps (as the login flow requires of them)."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    for user in (principal, vice_principal):
        TOTP.activate(user, generate_totp_secret())


@pytest.fixture
def confirmed(homeroom_teacher, school, records):
    """8A's two records, confirmed by the homeroom teacher (ready for the first signature)."""
    connection.set_tenant(school)
    return [year_record_confirm(actor=homeroom_teacher, school=school, record=r) for r in records]


def run(batch) -> str:
    """The worker's job, here; back in the school's schema afterwards for the assertions."""
    school = batch.school
    connection.set_schema_to_public()
    outcome = signing_batch_run(batch_pk=batch.pk, worker=WORKER)
    connection.set_tenant(school)
    return outcome


def start_and_run(*, actor, school, step, certificate, school_class=None, pin=PIN, otp="", totp=""):
    batch = signing_batch_start(
        actor=actor, school=school, step=step, certificate=certificate, school_class=school_class
    )
    signing_batch_confirm(actor=actor, school=school, batch=batch, pin=pin, otp=otp, totp=totp)
    run(batch)
    return SigningBatch.objects.get(pk=batch.pk)


def teacher_batch(homeroom_teacher, school, certificates, school_class):
    """The homeroom teacher's batch over the class, with their registered key file."""
    return signing_batch_start(
        actor=homeroom_teacher,
        school=school,
        step="homeroom_teacher",
        certificate=certificates["homeroom_teacher"],
        school_class=school_class,
    )


def teacher_signs(homeroom_teacher, school, certificates, school_class):
    """The homeroom teacher signs the class: start, confirm with the PIN, run."""
    return start_and_run(
        actor=homeroom_teacher,
        school=school,
        step="homeroom_teacher",
        certificate=certificates["homeroom_teacher"],
        school_class=school_class,
    )


def states(batch) -> list[str]:
    return list(batch.items.order_by("position").values_list("state", flat=True))


# --- Certificates ---------------------------------------------------------------------------------


def test_a_signer_registers_their_own_key_file_and_it_is_stored_encrypted(homeroom_teacher, signing_keys):
    certificate = certificate_register_pkcs12(
        actor=homeroom_teacher, user=homeroom_teacher, data=signing_keys["homeroom_teacher"], pin=SIGNING_PIN
    )
    assert certificate.subject_name == homeroom_teacher.full_name
    assert certificate.subject_title == "Giáo viên chủ nhiệm"
    assert signing_keys["homeroom_teacher"] not in bytes(certificate.sealed_pkcs12)
    assert AuditEntry.objects.filter(action="certificate_registered", object_id=str(certificate.pk)).exists()


@pytest.mark.parametrize(
    "case",
    ["someone_elses_name", "wrong_pin", "expired", "revoked", "untrusted", "already_registered"],
)
def test_a_certificate_that_cannot_sign_for_this_person_is_refused_at_registration(
    case, homeroom_teacher, colleague, signing_trust, signing_keys
):
    data, pin = signing_keys["homeroom_teacher"], SIGNING_PIN
    if case == "someone_elses_name":
        data = signing_keys["principal"]
    elif case == "wrong_pin":
        pin = "000000"
    elif case == "expired":
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
        data = signing_trust.person(
            homeroom_teacher.full_name, "Giáo viên", not_before=past, not_after=past + dt.timedelta(days=365)
        )
    elif case == "revoked":
        issued = ca.issue_person(signing_trust.ca, common_name=homeroom_teacher.full_name, title="Giáo viên")
        signing_trust.revoke(issued.cert)
        data = ca.pkcs12_export(issued, PIN)
    elif case == "untrusted":
        stranger = ca.dev_ca("Một CA lạ")
        data = ca.pkcs12_export(
            ca.issue_person(stranger, common_name=homeroom_teacher.full_name, title="Giáo viên"), PIN
        )
    elif case == "already_registered":  # the same certificate, by a colleague of the same name
        colleague.full_name = homeroom_teacher.full_name
        colleague.save()
        certificate_register_pkcs12(actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=pin)
        homeroom_teacher = colleague
    from django.utils.translation import override

    try:
        with override("en"), pytest.raises(ValidationError) as error:
            certificate_register_pkcs12(actor=homeroom_teacher, user=homeroom_teacher, data=data, pin=pin)
    finally:
        signing_trust.unrevoke_all()
    expected = {
        "someone_elses_name": "not to you",
        "wrong_pin": "Wrong PIN",
        "expired": "expired",
        "revoked": "revoked",
        "untrusted": "not issued by a certification authority this portal trusts",
        "already_registered": "registered with another account",
    }[case]
    assert expected in " ".join(error.value.messages)


def test_only_the_school_office_registers_the_seal_and_it_must_name_the_school(
    homeroom_teacher, school_admin, school, other_school, signing_trust
):
    seal = signing_trust.seal(school.name)
    with override("en"), pytest.raises(PermissionDenied, match=r"principal registers its seal"):
        certificate_register_pkcs12(actor=homeroom_teacher, school=school, data=seal, pin=SIGNING_PIN)
    with (
        override("en"),
        pytest.raises(ValidationError, match=r"This certificate was issued to"),
    ):  # another school's seal
        certificate_register_pkcs12(
            actor=school_admin, school=school, data=signing_trust.seal(other_school.name), pin=SIGNING_PIN
        )
    registered = certificate_register_pkcs12(actor=school_admin, school=school, data=seal, pin=SIGNING_PIN)
    assert registered.school_id == school.pk and registered.user_id is None


# --- A whole class, step by step --------------------------------------------------------------------


def test_a_class_is_signed_by_its_teacher_the_principal_and_the_seal_in_three_batches(
    monkeypatch,
    django_capture_on_commit_callbacks,
    homeroom_teacher,
    principal,
    school_admin,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
):
    school_class, _ = approved_class
    first = teacher_signs(homeroom_teacher, school, certificates, school_class)
    assert first.state == BatchState.DONE and states(first) == [ItemState.DONE] * 2
    assert first.secret is None  # the PIN is gone once the batch ends
    second = start_and_run(
        actor=principal,
        school=school,
        step="principal",
        certificate=certificates["principal"],
        totp=totp_code(principal),
    )
    assert states(second) == [ItemState.DONE] * 2
    from signing import tasks as signing_tasks
    from transcripts import tasks

    sent, jobs = [], []
    monkeypatch.setattr(
        tasks.year_record_pdf_render, "apply_async", lambda args, headers, **_: sent.append(args)
    )
    monkeypatch.setattr(
        signing_tasks.signing_batch_run, "apply_async", lambda args, **options: jobs.append(args)
    )
    with django_capture_on_commit_callbacks(execute=True):
        third = start_and_run(
            actor=school_admin, school=school, step="seal", certificate=certificates["seal"]
        )
    assert states(third) == [ItemState.DONE] * 2
    # The official PDFs are made at issue by the seal batch itself, sealed (signing.services.pdfs):
    # no rendering task is queued for them (it would store an unsealed PDF first).
    assert sent == []
    assert [r.pdf.sealed for r in YearRecord.objects.filter(pk__in=[r.pk for r in confirmed])] == [True] * 2
    assert jobs == [[third.pk]]  # the confirmation queued the batch's job

    for record in confirmed:
        record = YearRecord.objects.get(pk=record.pk)
        assert record.status == S.ISSUED
        assert list(record.signatures.values_list("position", flat=True)) == [1, 2, 3]
        document = year_record_document(record)
        from signing import trust

        reports = verify_year_record(document, trust_roots=trust.trust_roots(), crls=trust.crls())
        assert all_valid(reports), [r.problems for r in reports]
        assert [r.signer for r in reports] == [homeroom_teacher.full_name, principal.full_name, school.name]
        entry = IssuedRecord.objects.get(record_id=record.record_id, version=record.version)
        assert entry.sha256 == record.signatures.get(position=3).sha256
    assert AuditEntry.objects.filter(action="year_record_signed", school=school).count() == 6 + 2  # + PDFs
    assert AuditEntry.objects.filter(action="signing_batch_finished", school=school).count() == 3


def test_the_principal_confirms_with_a_fresh_two_factor_code(
    homeroom_teacher,
    principal,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
):
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    batch = signing_batch_start(
        actor=principal, school=school, step="principal", certificate=certificates["principal"]
    )
    for wrong in ("", "000000"):
        with override("en"), pytest.raises(ValidationError, match=r"Wrong or already used two-factor code"):
            signing_batch_confirm(actor=principal, school=school, batch=batch, pin=PIN, totp=wrong)
    with (
        override("en"),
        pytest.raises(ValidationError, match=r"Wrong PIN"),
    ):  # the right code, the wrong PIN: nothing is queued
        signing_batch_confirm(
            actor=principal, school=school, batch=batch, pin="999999", totp=totp_code(principal)
        )
    assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.AWAITING_CONFIRMATION
    code = totp_code(principal)
    signing_batch_confirm(actor=principal, school=school, batch=batch, pin=PIN, totp=code)
    assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.QUEUED
    # The same code does not confirm a second batch: a code is accepted once.
    again = signing_batch_start(
        actor=principal, school=school, step="principal", certificate=certificates["principal"]
    )
    with override("en"), pytest.raises(ValidationError, match=r"Wrong or already used two-factor code"):
        signing_batch_confirm(actor=principal, school=school, batch=again, pin=PIN, totp=code)


def test_a_vice_principal_signs_on_the_principals_behalf_with_their_own_title(
    homeroom_teacher,
    vice_principal,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
):
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    start_and_run(
        actor=vice_principal,
        school=school,
        step="principal",
        certificate=certificates["vice_principal"],
        totp=totp_code(vice_principal),
    )
    signature = YearRecordSignature.objects.get(record=confirmed[0], position=2)
    assert (signature.signer_name, signature.signer_title) == (vice_principal.full_name, "Phó Hiệu trưởng")
    # The title travels in the signed document (the signer's certificate, covered by the signature).
    from signing import trust

    reports = verify_year_record(
        bytes(signature.signed_xml), trust_roots=trust.trust_roots(), crls=trust.crls()
    )
    assert (reports[1].role, reports[1].signer, reports[1].title) == (
        "principal",
        vice_principal.full_name,
        "Phó Hiệu trưởng",
    )


# --- Refusals ---------------------------------------------------------------------------------------


def test_wrong_role_wrong_school_and_wrong_state_are_refused_when_a_batch_starts(
    homeroom_teacher,
    subject_teacher,
    principal,
    other_school_admin,
    school,
    other_school,
    confirmed,
    certificates,
    approved_class,
):
    school_class, _ = approved_class
    with (
        override("en"),
        pytest.raises(PermissionDenied, match=r"You may not sign this step"),
    ):  # a subject teacher is not the class's signer
        signing_batch_start(
            actor=subject_teacher,
            school=school,
            step="homeroom_teacher",
            certificate=certificates["homeroom_teacher"],
            school_class=school_class,
        )
    with (
        override("en"),
        pytest.raises(PermissionDenied, match=r"You may not sign this step"),
    ):  # another school's administrator applies no seal here
        signing_batch_start(
            actor=other_school_admin, school=school, step="seal", certificate=certificates["seal"]
        )
    with (
        override("en"),
        pytest.raises(PermissionDenied, match=r"This certificate cannot sign for you here"),
    ):  # someone else's certificate
        signing_batch_start(
            actor=principal, school=school, step="principal", certificate=certificates["vice_principal"]
        )
    with (
        override("en"),
        pytest.raises(ValidationError, match=r"No year record is waiting for this signature"),
    ):  # nothing is signed by the homeroom teacher yet
        signing_batch_start(
            actor=principal, school=school, step="principal", certificate=certificates["principal"]
        )


def test_a_record_that_changed_since_the_batch_started_fails_alone_and_can_be_retried(
    homeroom_teacher,
    principal,
    school,
    confirmed,
    certificates,
    approved_class,
):
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    year_record_revoke(actor=principal, school=school, record=confirmed[0], reason="Nhầm học sinh")
    run(batch)

    assert states(batch) == [ItemState.FAILED, ItemState.DONE]
    failed = batch.items.get(state=ItemState.FAILED)
    assert "Revoked" in failed.reason or "thu hồi" in failed.reason.lower() or "Đã thu hồi" in failed.reason
    assert YearRecord.objects.get(pk=confirmed[1].pk).status == S.SIGNED_HOMEROOM
    # Nothing of the failed record is left to sign again: the retry says so.
    with (
        override("en"),
        pytest.raises(ValidationError, match=r"No failed record of this batch is still waiting"),
    ):
        signing_batch_retry(actor=homeroom_teacher, school=school, batch=batch)


def test_a_second_run_of_a_finished_batch_signs_nothing_twice(
    homeroom_teacher,
    school,
    confirmed,
    certificates,
    approved_class,
):
    school_class, _ = approved_class
    batch = teacher_signs(homeroom_teacher, school, certificates, school_class)
    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING, lease_owner="", lease_until=None
    )
    run(batch)
    assert YearRecordSignature.objects.filter(record__in=confirmed).count() == 2
    # And a new batch at a signed step finds nothing to sign.
    with (
        override("en"),
        pytest.raises(ValidationError, match=r"No year record is waiting for this signature"),
    ):
        teacher_batch(homeroom_teacher, school, certificates, school_class)


def test_a_certificate_revoked_during_a_batch_stops_the_remaining_signatures(
    homeroom_teacher,
    school,
    confirmed,
    certificates,
    signing_trust,
    approved_class,
):
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    from cryptography import x509

    signing_trust.revoke(x509.load_der_x509_certificate(bytes(certificates["homeroom_teacher"].certificate)))
    try:
        run(batch)
    finally:
        signing_trust.unrevoke_all()
    assert states(batch) == [ItemState.FAILED, ItemState.FAILED]
    assert all("revoked" in i.reason or "thu hồi" in i.reason for i in batch.items.all())
    assert not YearRecordSignature.objects.filter(record__in=confirmed).exists()


def test_a_role_taken_away_during_a_batch_is_noticed_before_the_next_signature(
    homeroom_teacher,
    department_admin,
    school,
    confirmed,
    certificates,
    approved_class,
):
    from portal.models import RoleAssignment
    from portal.services import role_assignment_revoke

    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    connection.set_schema_to_public()
    for assignment in RoleAssignment.objects.current().filter(user=homeroom_teacher, school=school):
        role_assignment_revoke(actor=department_admin, assignment=assignment)
    run(batch)
    assert states(batch) == [ItemState.FAILED, ItemState.FAILED]


def test_a_removed_certificate_and_a_cancelled_batch_sign_nothing(
    homeroom_teacher,
    school,
    confirmed,
    certificates,
    approved_class,
):
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    signing_batch_cancel(actor=homeroom_teacher, school=school, batch=batch)
    assert run(batch) == "not claimed"
    assert SigningBatch.objects.get(pk=batch.pk).secret is None
    certificate_remove(actor=homeroom_teacher, certificate=certificates["homeroom_teacher"])
    with override("en"), pytest.raises(PermissionDenied, match=r"This certificate cannot sign for you here"):
        teacher_batch(homeroom_teacher, school, certificates, school_class)
    assert not YearRecordSignature.objects.filter(record__in=confirmed).exists()


def test_the_sweep_queues_batches_whose_lease_ran_out(
    homeroom_teacher,
    school,
    confirmed,
    certificates,
    approved_class,
    monkeypatch,
):
    from signing.services import runner

    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    queued = []
    monkeypatch.setattr(runner, "signing_batch_enqueue", queued.append)
    from django.utils import timezone

    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING,
        lease_owner="dead-worker",
        lease_until=timezone.now() + dt.timedelta(seconds=30),
    )
    assert signing_batches_resume() == [] and queued == []  # held: not touched
    SigningBatch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert signing_batches_resume() == [batch.pk] and queued == [batch.pk]
    run(batch)  # another worker takes it over
    assert states(batch) == [ItemState.DONE, ItemState.DONE]


# --- Pages ------------------------------------------------------------------------------------------


def test_the_class_page_offers_the_signature_and_the_batch_page_shows_progress(
    client_as,
    homeroom_teacher,
    principal,
    school,
    confirmed,
    certificates,
    approved_class,
):
    school_class, _ = approved_class
    client = client_as(homeroom_teacher)
    page = client.get(f"/truong/{school.code}/so-diem/ho-so/lop/{school_class.pk}/")
    assert [o.step for o in page.context["signing_offers"]] == ["homeroom_teacher"]
    assert "PDF khi phát hành" in page.content.decode()  # not issued yet: no PDF is on its way
    response = client.post(
        reverse("signing:batch_start", kwargs={"school_code": school.code}),
        {
            "step": "homeroom_teacher",
            "class_id": school_class.pk,
            "certificate": certificates["homeroom_teacher"].pk,
        },
    )
    assert response.status_code == 302
    connection.set_schema_to_public()
    batch = SigningBatch.objects.get(school=school, signer=homeroom_teacher)
    url = reverse("signing:batch", kwargs={"school_code": school.code, "batch_pk": batch.pk})
    assert response["Location"] == url
    page = client.get(url)
    assert page.status_code == 200 and b'name="pin"' in page.content and b'name="totp"' not in page.content
    confirmed_page = client.post(url + "xac-nhan/", {"pin": PIN})
    assert confirmed_page.status_code == 302
    connection.set_schema_to_public()
    assert SigningBatch.objects.get(pk=batch.pk).state == BatchState.QUEUED
    run(batch)
    progress = client.get(url + "tien-do/").json()
    assert (progress["total"], progress["done"], progress["failed"], progress["remaining"]) == (2, 2, 0, 0)
    assert progress["finished"] is True
    # Someone else's batch does not exist for them, even the principal's.
    assert client_as(principal).get(url).status_code == 404
    assert client_as(principal).get(url + "tien-do/").status_code == 404


def test_a_tampered_form_finds_nothing(client_as, homeroom_teacher, school, certificates):
    client = client_as(homeroom_teacher)
    start = reverse("signing:batch_start", kwargs={"school_code": school.code})
    response = client.post(start, {"step": "homeroom_teacher", "class_id": "x'; --", "certificate": "1"})
    assert response.status_code == 404
    response = client.post(start, {"step": "homeroom_teacher", "certificate": "abc"}, follow=True)
    assert response.status_code == 200  # no certificate chosen: said on the page
    response = client.post(
        reverse("signing_account:certificates"), {"action": "remove", "certificate": "1e9"}
    )
    assert response.status_code == 404


def test_the_schools_signing_page_offers_each_user_their_own_steps(
    client_as, homeroom_teacher, principal, school_admin, school, confirmed, certificates, approved_class
):
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    url = reverse("signing:batches", kwargs={"school_code": school.code})

    offers = client_as(principal).get(url).context["steps"]
    assert [(o.step, o.waiting, len(o.certificates)) for o in offers] == [("principal", 2, 1), ("seal", 0, 1)]
    offers = client_as(school_admin).get(url).context["steps"]
    assert [(o.step, o.waiting) for o in offers] == [("seal", 0)]
    page = client_as(homeroom_teacher).get(url)
    assert page.context["steps"] == []  # the homeroom teacher signs from the class's records page
    assert [b.done for b in page.context["batches"]] == [2]
