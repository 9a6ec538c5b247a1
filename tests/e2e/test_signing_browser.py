"""A homeroom teacher signs the class in a real browser and watches the batch's progress bar.

The server, a real Celery worker and the browser are three processes; the class, the teacher and
their key file are committed for them (tests/signing/world.py: a school of its own).
"""

from __future__ import annotations

import time
import uuid

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.conf import settings
from django.db import connection

from signing.services import certificate_register_pkcs12
from tests.conftest import PASSWORD
from tests.e2e.conftest import wait_until
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school
from tests.signing_kit import PIN
from tests.worker import Worker
from transcripts.models import YearRecord, YearRecordSignature, YearRecordStatus

pytestmark = pytest.mark.slow

RECORDS = 12


@pytest.fixture
def signing_worker(django_db_blocker, e2e_signing_queue, tmp_path):
    with django_db_blocker.unblock():
        worker = Worker(
            queue=e2e_signing_queue,
            log=tmp_path / "worker.log",
            env={
                "HOCBA_TRUST_ROOTS": ",".join(settings.HOCBA_TRUST_ROOTS),
                "HOCBA_TRUST_CRLS": ",".join(settings.HOCBA_TRUST_CRLS),
                "HOCBA_SIGNING_QUEUE": e2e_signing_queue,
            },
        ).start()
    yield worker
    worker.stop()


@pytest.fixture
def world(django_db_blocker, signing_trust):
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        school = signing_school()
        teacher = homeroom_teacher_for(school, tag)
        certificate_register_pkcs12(
            actor=teacher,
            user=teacher,
            data=signing_trust.person(teacher.full_name, "Giáo viên chủ nhiệm"),
            pin=PIN,
        )
        school_class = confirmed_class(school, teacher, tag=tag, size=RECORDS)
        # A homeroom teacher signs, so logs in with a second factor (issue 9, finding 5).
        teacher.totp_secret = generate_totp_secret()
        TOTP.activate(teacher, teacher.totp_secret)
    return school, teacher, school_class


def test_the_homeroom_teacher_signs_the_class_and_the_progress_bar_fills(
    live_url, page, world, signing_worker, django_db_blocker, tmp_path
):
    school, teacher, school_class = world
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", teacher.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/accounts/2fa/authenticate/")
    page.fill("input[name=code]", format_hotp_value(hotp_value(teacher.totp_secret, int(time.time()) // 30)))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")

    page.goto(f"{live_url}/truong/{school.code}/so-diem/ho-so/lop/{school_class.pk}/")
    offer = page.locator("section.signing-offer")
    assert f"Ký {RECORDS} hồ sơ của lớp" in offer.inner_text()
    offer.locator("button[type=submit]").click()

    page.locator("input[name=pin]").wait_for()
    assert f"Xác nhận ký {RECORDS} hồ sơ" in page.locator("h2").first.inner_text()
    page.fill("input[name=pin]", "000000")  # a wrong PIN first: said, nothing queued
    page.click("#confirm-form button[type=submit]")
    assert "Sai mã PIN" in page.locator("ul.messages").inner_text()
    page.fill("input[name=pin]", PIN)
    page.click("#confirm-form button[type=submit]")

    page.locator("#batch-progress").wait_for()
    wait_until(page, f"document.getElementById('batch-done').textContent === '{RECORDS}'", timeout=60_000)
    assert page.locator("#batch-failed").inner_text() == "0"
    assert page.locator("#batch-remaining").inner_text() == "0"
    assert page.eval_on_selector("#batch-bar", "bar => [bar.value, bar.max]") == [RECORDS, RECORDS]
    wait_until(page, "document.getElementById('batch-state').textContent === 'Đã xong'", timeout=30_000)
    assert not page.locator("#batch-retry").is_visible()  # nothing failed: nothing to sign again
    assert not page.locator("#batch-stop").is_visible()  # finished: nothing to stop
    page.screenshot(path=str(tmp_path / "signing-progress.png"), full_page=True)

    with django_db_blocker.unblock():
        with school:
            records = YearRecord.objects.filter(enrolment__school_class=school_class)
            assert {r.status for r in records} == {YearRecordStatus.SIGNED_HOMEROOM}
            assert YearRecordSignature.objects.filter(record__in=records).count() == RECORDS
        connection.set_schema_to_public()
