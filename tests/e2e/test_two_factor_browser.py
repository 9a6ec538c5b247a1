"""The code page at sign-in in a real browser (issue 14: "Hủy" was the last submit button of the
code's form): Enter in the code field signs in, and "Hủy" goes back to the sign-in page signed out."""

from __future__ import annotations

import time
import uuid

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

from portal.choices import Role
from portal.models import RoleAssignment, School, User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.slow


@pytest.fixture
def principal_with_code(django_db_blocker):
    """A principal of the test school (committed, for the server), with an authenticator app."""
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        user = User.objects.create_user(
            username=f"t-2fa-{tag}",
            password=PASSWORD,
            full_name="Trịnh Hiệu Trưởng",
            email=f"2fa-{tag}@test.local",
        )
        RoleAssignment.objects.create(
            user=user, role=Role.PRINCIPAL, school=School.objects.get(code="t-th-a")
        )
        secret = generate_totp_secret()
        TOTP.activate(user, secret)
    return user, secret


def _to_the_code_page(page, live_url, user) -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{live_url}/accounts/2fa/authenticate/")


def test_enter_in_the_code_field_signs_in(live_url, page, principal_with_code):
    user, secret = principal_with_code
    _to_the_code_page(page, live_url, user)
    assert page.evaluate("document.activeElement.name") == "code"  # focused: type, then Enter
    page.keyboard.type("000000")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # a wrong code: refused, in Vietnamese, still on the page
    assert page.url == f"{live_url}/accounts/2fa/authenticate/"
    assert page.locator("#id_code_errors").inner_text().strip() != ""
    assert "Incorrect" not in page.content()

    page.fill("input[name=code]", format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
    page.press("input[name=code]", "Enter")
    page.wait_for_url(f"{live_url}/")
    assert user.full_name in page.locator("header").inner_text()


def test_cancel_goes_back_to_the_sign_in_page_signed_out(live_url, page, principal_with_code):
    user, _secret = principal_with_code
    _to_the_code_page(page, live_url, user)
    page.get_by_role("button", name="Hủy").click()
    page.wait_for_url(f"{live_url}/accounts/login/")
    page.goto(f"{live_url}/")
    assert page.url.startswith(f"{live_url}/accounts/login/")
