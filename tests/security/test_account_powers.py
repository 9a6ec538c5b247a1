"""Issue 9, finding 4: who may take over an account follows the delegation rule.

Whoever could grant every role an account holds may change its password, e-mail, active flag
and second factor (portal.permissions.can_manage_account); anyone else in scope sees it read-only
and is refused with the reason; out of scope it does not exist (404). Through the real admin URLs.
"""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from portal.choices import AuditAction
from portal.models import AuditEntry, User
from tests.conftest import PASSWORD

NEW_PASSWORD = "mat-khau-moi-2026-Xy"
REFUSED = "mà bạn không được cấp"

# (actor, target, may manage)
MATRIX = [
    ("school_admin", "principal", False),
    ("school_admin", "vice_principal", False),
    ("school_admin", "homeroom_teacher", True),
    ("school_admin", "subject_teacher", True),
    ("principal", "vice_principal", False),
    ("principal", "subject_teacher", True),
    ("division_manager", "principal", True),
    ("division_manager", "vice_principal", True),
    ("division_manager", "school_admin", True),
    ("division_manager", "homeroom_teacher", False),
    ("department_admin", "principal", True),
    ("department_admin", "vice_principal", True),
    ("department_admin", "school_admin", True),
    ("department_admin", "homeroom_teacher", True),
    ("department_admin", "division_manager", True),
]


def _change_form(target: User, **overrides) -> dict:
    data = {
        "username": target.username,
        "full_name": target.full_name,
        "email": target.email,
        "is_active": "on" if target.is_active else "",
        "role_assignments-TOTAL_FORMS": "0",
        "role_assignments-INITIAL_FORMS": "0",
        "role_assignments-MIN_NUM_FORMS": "0",
        "role_assignments-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def _audited(target: User, field: str) -> bool:
    return AuditEntry.objects.filter(
        action=AuditAction.USER_CHANGED, object_id=str(target.pk), changes__has_key=field
    ).exists()


def _assert_refused(response, target: User) -> None:
    assert response.status_code == 403
    page = response.content.decode()
    assert REFUSED in page  # the reason, in Vietnamese, naming the role the actor may not grant
    role = target.role_assignments.get().get_role_display()
    assert str(role) in page


@pytest.mark.parametrize(("actor_name", "target_name", "allowed"), MATRIX)
def test_only_whoever_may_grant_the_accounts_roles_sets_its_password(
    client_as, persona, actor_name, target_name, allowed
):
    target = persona(target_name)
    client = client_as(persona(actor_name))
    response = client.post(
        f"/admin/portal/user/{target.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    target.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert target.check_password(NEW_PASSWORD)
        assert _audited(target, "password")
    else:
        _assert_refused(response, target)
        assert target.check_password(PASSWORD)
        assert not _audited(target, "password")


@pytest.mark.parametrize(("actor_name", "target_name", "allowed"), MATRIX)
def test_only_whoever_may_grant_the_accounts_roles_changes_its_email(
    client_as, persona, actor_name, target_name, allowed
):
    target = persona(target_name)
    client = client_as(persona(actor_name))
    response = client.post(
        f"/admin/portal/user/{target.pk}/change/", _change_form(target, email="ke-gian@example.com")
    )
    target.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert target.email == "ke-gian@example.com"
        assert _audited(target, "email")
    else:
        _assert_refused(response, target)
        assert target.email == f"{target_name}@test.local"
        assert not _audited(target, "email")


@pytest.mark.parametrize(("actor_name", "target_name", "allowed"), MATRIX)
def test_only_whoever_may_grant_the_accounts_roles_disables_it(
    client_as, persona, actor_name, target_name, allowed
):
    target = persona(target_name)
    client = client_as(persona(actor_name))
    response = client.post(f"/admin/portal/user/{target.pk}/change/", _change_form(target, is_active=""))
    target.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert not target.is_active
        assert _audited(target, "is_active")
    else:
        _assert_refused(response, target)
        assert target.is_active


@pytest.mark.parametrize(("actor_name", "target_name", "allowed"), MATRIX)
def test_only_whoever_may_grant_the_accounts_roles_removes_its_second_factor(
    client_as, persona, actor_name, target_name, allowed
):
    target = persona(target_name)
    if not Authenticator.objects.filter(user=target, type="totp").exists():
        TOTP.activate(target, generate_totp_secret())
    client = client_as(persona(actor_name))
    response = client.post(f"/admin/portal/user/{target.pk}/two-factor/")
    has_totp = Authenticator.objects.filter(user=target, type="totp").exists()
    if allowed:
        assert response.status_code == 302
        assert not has_totp
        assert _audited(target, "two_factor")
    else:
        _assert_refused(response, target)
        assert has_totp


def test_a_school_administrator_sees_the_principals_account_read_only_with_the_reason(
    client_as, school_admin, principal
):
    response = client_as(school_admin).get(f"/admin/portal/user/{principal.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert REFUSED in page
    assert 'name="email"' not in page  # no input: read-only


@pytest.mark.parametrize("path", ["change/", "password/", "two-factor/"])
def test_an_account_outside_the_actors_scope_does_not_exist_for_it(
    client_as, other_school_admin, principal, path
):
    response = client_as(other_school_admin).get(f"/admin/portal/user/{principal.pk}/{path}")
    assert response.status_code == 404


def test_nobody_manages_their_own_account_from_the_admin(client_as, school_admin):
    response = client_as(school_admin).post(
        f"/admin/portal/user/{school_admin.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 403
    assert "tài khoản của chính mình" in response.content.decode()
    school_admin.refresh_from_db()
    assert school_admin.check_password(PASSWORD)
