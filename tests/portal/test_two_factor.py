"""Two-factor login (TOTP) for those who grant roles, sign, or read beyond one class
(portal.permissions.requires_two_factor; the full list: tests/security/test_two_factor_roles.py)."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

from tests.conftest import PASSWORD


@pytest.mark.parametrize(
    "persona_name",
    [
        "principal",
        "vice_principal",
        "school_admin",
        "department_admin",
        "homeroom_teacher",
        "division_manager",
    ],
)
def test_those_who_must_use_two_factor_are_sent_to_set_it_up(client, persona, persona_name):
    client.force_login(persona(persona_name))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/totp/activate/")


@pytest.mark.parametrize("persona_name", ["subject_teacher", "division_officer"])
def test_subject_teachers_and_officers_without_grants_are_not_forced_to_use_two_factor(
    client, persona, persona_name
):
    client.force_login(persona(persona_name))
    assert client.get("/").status_code == 200


def test_a_principal_logs_in_with_password_then_code(client, principal):
    secret = generate_totp_secret()
    TOTP.activate(principal, secret)

    response = client.post("/accounts/login/", {"login": "principal", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/").status_code == 302  # not logged in until the code is given

    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200

    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_login_by_email_works_too(client, subject_teacher):
    response = client.post("/accounts/login/", {"login": "subject_teacher@test.local", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused_in_vietnamese(client, homeroom_teacher):
    response = client.post(
        "/accounts/login/", {"login": "homeroom_teacher", "password": "sai"}, HTTP_ACCEPT_LANGUAGE="vi"
    )
    assert response.status_code == 200
    assert "không đúng" in response.content.decode()


def test_a_password_reset_mail_is_sent(client, homeroom_teacher, mailoutbox):
    response = client.post("/accounts/password/reset/", {"email": "homeroom_teacher@test.local"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


def test_nobody_can_sign_up(client):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert "signup_closed" in " ".join(t.name for t in response.templates if t.name)


def test_authenticators_are_per_user(principal):
    TOTP.activate(principal, generate_totp_secret())
    assert Authenticator.objects.filter(user=principal).count() == 1


def _sign_in_with_password(client, user):
    response = client.post("/accounts/login/", {"login": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client.get(response["Location"])


def test_setting_up_the_second_factor_right_after_signing_in_does_not_ask_for_the_password_again(
    client, principal
):
    sent = _sign_in_with_password(client, principal)
    assert sent["Location"].startswith("/accounts/2fa/totp/activate/")

    page = client.get(sent["Location"])

    assert page.status_code == 200, page.get("Location")


def test_setting_up_the_second_factor_long_after_signing_in_asks_for_the_password(client, principal):
    from allauth.account import app_settings

    sent = _sign_in_with_password(client, principal)
    session = client.session
    records = session["account_authentication_methods"]
    records[-1]["at"] -= app_settings.REAUTHENTICATION_TIMEOUT + 1
    session["account_authentication_methods"] = records
    session.save()

    page = client.get(sent["Location"])

    assert page.status_code == 302 and page["Location"].startswith("/accounts/reauthenticate/")
