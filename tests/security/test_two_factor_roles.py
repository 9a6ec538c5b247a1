"""Issue 9, finding 5: whoever can grant roles, sign, or read named students' data beyond one
class logs in with a second factor, and without one reaches nothing but setting it up."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value

from portal.choices import Role
from portal.permissions import requires_two_factor
from portal.services import role_assignment_grant
from tests.conftest import PASSWORD

ACTIVATE = "/accounts/2fa/totp/activate/"


@pytest.mark.parametrize(
    "persona_name",
    [
        "division_manager",  # grants principals
        "homeroom_teacher",  # signs its class's records with a key file
        "department_officer",  # reads any school's students under a data grant
        "school_admin",
        "principal",
        "vice_principal",
        "department_admin",
    ],
)
def test_those_who_grant_sign_or_read_beyond_a_class_need_a_second_factor(persona, persona_name):
    assert requires_two_factor(persona(persona_name))


@pytest.mark.parametrize("persona_name", ["subject_teacher", "division_officer"])
def test_a_subject_teacher_and_a_division_officer_without_grants_do_not(persona, persona_name):
    assert not requires_two_factor(persona(persona_name))


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/admin/",
        "/admin/portal/roleassignment/add/",
        "/truong/t-th-a/",
        "/accounts/password/change/",
        "/accounts/email/",
    ],
)
def test_a_division_manager_without_totp_reaches_nothing_but_its_setup(client, division_manager, path):
    client.force_login(division_manager)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(ACTIVATE)


def test_the_setup_page_itself_is_reachable_without_totp(client, division_manager):
    client.force_login(division_manager)
    response = client.get(ACTIVATE)
    # The setup page, or allauth's "confirm your password" step before it; never a loop.
    assert response.status_code == 200 or response["Location"].startswith("/accounts/reauthenticate/")


def test_an_officer_made_division_manager_must_then_set_up_a_second_factor(
    client, department_admin, division_officer, division_b
):
    client.force_login(division_officer)
    assert client.get("/").status_code == 200
    role_assignment_grant(
        actor=department_admin,
        user=division_officer,
        role=Role.DIVISION_OFFICER,
        division=division_b,
        is_manager=True,
    )
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(ACTIVATE)


def test_a_division_manager_with_totp_logs_in_with_password_then_code(client, division_manager):
    secret = generate_totp_secret()
    TOTP.activate(division_manager, secret)
    response = client.post("/accounts/login/", {"login": "division_manager", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/admin/").status_code == 302  # not logged in until the code is given
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    assert client.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302
    assert client.get("/admin/").status_code == 200
