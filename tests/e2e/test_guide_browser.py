"""A homeroom teacher new to signing meets the signing guide in a real browser, hides it and
brings it back, with scripts turned off (the guide's buttons are plain forms).

With HOCBA_SCREENSHOTS=1 the guide on the batch's confirmation page is saved as
docs/images/guide-sign-batch.png (the image in the docs); otherwise under the test's tmp_path,
so that an ordinary run never rewrites a committed image.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.db import connection

from portal.models import GuideDismissal
from signing.services import certificate_register_pkcs12
from tests.conftest import PASSWORD
from tests.e2e.conftest import ROOT
from tests.signing.world import confirmed_class, homeroom_teacher_for, signing_school
from tests.signing_kit import PIN

pytestmark = pytest.mark.slow

RECORDS = 12


@pytest.fixture
def world(django_db_blocker, signing_trust):
    """A homeroom teacher with a key file and a confirmed class waiting for their signature."""
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        school = signing_school()
        teacher = homeroom_teacher_for(school, tag)
        # A name of this test's own: the kit makes one key per name, and a certificate belongs to
        # one account (test_signing_browser.py's teacher has the world's default name).
        teacher.full_name = "Trương Thị Hướng"
        teacher.save(update_fields=["full_name"])
        certificate_register_pkcs12(
            actor=teacher,
            user=teacher,
            data=signing_trust.person(teacher.full_name, "Giáo viên chủ nhiệm"),
            pin=PIN,
        )
        school_class = confirmed_class(school, teacher, tag=tag, size=RECORDS)
        teacher.totp_secret = generate_totp_secret()
        TOTP.activate(teacher, teacher.totp_secret)
        connection.set_schema_to_public()
    return school, teacher, school_class


@pytest.fixture
def page_without_scripts(browser):
    context = browser.new_context(
        locale="vi-VN", viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    yield context.new_page()
    context.close()


def screenshot_path(tmp_path):
    if os.environ.get("HOCBA_SCREENSHOTS") == "1":
        return ROOT / "docs" / "images" / "guide-sign-batch.png"
    return tmp_path / "guide-sign-batch.png"


def test_a_teacher_new_to_signing_reads_the_guide_hides_it_and_brings_it_back(
    live_url, browser, page_without_scripts, world, django_db_blocker, tmp_path
):
    page = page_without_scripts
    school, teacher, school_class = world
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", teacher.username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")  # without scripts the header's language form has a button too
    page.wait_for_url(f"{live_url}/accounts/2fa/authenticate/")
    page.fill("input[name=code]", format_hotp_value(hotp_value(teacher.totp_secret, int(time.time()) // 30)))
    page.press("input[name=code]", "Enter")
    page.wait_for_url(f"{live_url}/")

    # The class's page: the guide comes before the signing offer.
    page.goto(f"{live_url}/truong/{school.code}/so-diem/ho-so/lop/{school_class.pk}/")
    assert "Ký số học bạ" in page.locator("section.guide#guide-sign_batch").inner_text()
    page.locator("section.signing-offer button[type=submit]").click()

    # The batch waits for the PIN: the guide says what signing does and what cannot be undone.
    page.locator("input[name=pin]").wait_for()
    batch_url = page.url
    guide = page.locator("#guide-sign_batch")
    text = guide.inner_text()
    assert "Những điều không thể hoàn tác" in text
    assert "Đã ký thì không rút lại được" in text
    assert guide.locator("a", has_text="Chữ ký số là gì?").get_attribute("href") == "/huong-dan/chu-ky-so/"
    # The picture is taken as most teachers see the page: with scripts on (same session).
    seen = browser.new_context(
        locale="vi-VN", viewport={"width": 1280, "height": 900}, storage_state=page.context.storage_state()
    )
    shot = seen.new_page()
    shot.goto(batch_url)
    shot.locator("#guide-sign_batch").wait_for()
    shot.screenshot(path=str(screenshot_path(tmp_path)), full_page=False)
    seen.close()

    # "Đã hiểu, ẩn hướng dẫn": back on the same page, the guide gone, a small button in its place.
    guide.get_by_role("button", name="Đã hiểu, ẩn hướng dẫn").click()
    page.wait_for_url(f"{batch_url}#guide-sign_batch")
    assert page.locator("section.guide").count() == 0
    reopen = page.locator("form.guide-reopen#guide-sign_batch button")
    assert reopen.inner_text() == "Hướng dẫn: Ký số học bạ"
    with django_db_blocker.unblock():
        assert GuideDismissal.objects.filter(user=teacher, code="sign_batch").exists()

    # It stays hidden on the next page that offers the step, until the teacher reopens it.
    page.goto(f"{live_url}/truong/{school.code}/so-diem/ho-so/lop/{school_class.pk}/")
    assert page.locator("section.guide").count() == 0
    page.locator("form.guide-reopen#guide-sign_batch button").click()
    assert "Ký số học bạ" in page.locator("section.guide#guide-sign_batch").inner_text()
    with django_db_blocker.unblock():
        assert not GuideDismissal.objects.filter(user=teacher, code="sign_batch").exists()

    # The page the guide links to, in plain Vietnamese.
    page.goto(f"{live_url}/huong-dan/chu-ky-so/")
    assert page.locator("h1").inner_text() == "Chữ ký số là gì?"
