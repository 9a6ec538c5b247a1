"""Every refusal of the delegation rule and of the capability questions, met alone, with its reason.

issue 9, finding 14: the grant tests checked that *some* PermissionDenied came; here each refused
grant names the rule that refused it, and each capability question is asked at its boundary.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import override

from portal.choices import Role
from portal.models import RoleAssignment, User
from portal.permissions import (
    access_for,
    can_administer_province,
    can_grant,
    can_manage_account,
    can_open_school_data,
    can_revoke,
    can_unlock_logins,
    can_use_admin,
    forget_access,
    grantable_roles,
    requires_two_factor,
    school_is_visible,
)
from portal.services import role_assignment_grant, role_assignment_revoke

OUTSIDE = "Your roles do not allow granting this role in this scope."
FLAGS = "Only the department administrator grants data access or the manager flag."


@pytest.fixture
def newcomer(db) -> User:
    return User.objects.create_user(username="newcomer", password="x", full_name="Người Mới")


@pytest.fixture
def scope_of(school, other_school, direct_school, division_a, division_b):
    scopes = {
        "school": {"school": school},
        "other_school": {"school": other_school},
        "direct_school": {"school": direct_school},
        "division_a": {"division": division_a},
        "division_b": {"division": division_b},
        "department": {},
        "school_and_division": {"school": school, "division": division_a},
    }
    return scopes.__getitem__


# (granter, role, scope, flags, the reason)
REFUSED = [
    ("department_admin", "notary", "department", {}, "Unknown role."),
    (
        "department_admin",
        Role.DEPARTMENT_OFFICER,
        "division_a",
        {},
        "This role applies to the whole department; choose no division or school.",
    ),
    (
        "department_admin",
        Role.DEPARTMENT_OFFICER,
        "school",
        {},
        "This role applies to the whole department; choose no division or school.",
    ),
    ("department_admin", Role.DIVISION_OFFICER, "school", {}, "This role needs a division, and no school."),
    (
        "department_admin",
        Role.DIVISION_OFFICER,
        "department",
        {},
        "This role needs a division, and no school.",
    ),
    (
        "department_admin",
        Role.DIVISION_OFFICER,
        "school_and_division",
        {},
        "This role needs a division, and no school.",
    ),
    ("department_admin", Role.PRINCIPAL, "division_a", {}, "This role needs a school, and no division."),
    ("department_admin", Role.PRINCIPAL, "department", {}, "This role needs a school, and no division."),
    (
        "department_admin",
        Role.PRINCIPAL,
        "school_and_division",
        {},
        "This role needs a school, and no division.",
    ),
    (
        "department_admin",
        Role.PRINCIPAL,
        "school",
        {"is_manager": True},
        "Only a division officer can be a division manager.",
    ),
    ("division_manager", Role.PRINCIPAL, "school", {"data_access": True}, FLAGS),
    ("division_manager", Role.DIVISION_OFFICER, "division_a", {"is_manager": True}, FLAGS),
    ("division_manager", Role.DIVISION_OFFICER, "division_a", {}, OUTSIDE),
    ("division_manager", Role.HOMEROOM_TEACHER, "school", {}, OUTSIDE),
    ("division_manager", Role.PRINCIPAL, "other_school", {}, OUTSIDE),
    ("division_manager", Role.PRINCIPAL, "direct_school", {}, OUTSIDE),
    ("division_officer", Role.PRINCIPAL, "school", {}, OUTSIDE),
    ("school_admin", Role.PRINCIPAL, "school", {}, OUTSIDE),
    ("school_admin", Role.SUBJECT_TEACHER, "other_school", {}, OUTSIDE),
    ("vice_principal", Role.SUBJECT_TEACHER, "school", {}, OUTSIDE),
    ("homeroom_teacher", Role.SUBJECT_TEACHER, "school", {}, OUTSIDE),
    ("department_officer", Role.SUBJECT_TEACHER, "school", {}, OUTSIDE),
]


@pytest.mark.parametrize(("granter", "role", "scope", "flags", "reason"), REFUSED)
def test_each_refused_grant_says_which_rule_refused_it(
    persona, scope_of, newcomer, granter, role, scope, flags, reason
):
    with override("en"):
        decision = can_grant(persona(granter), grantee=newcomer, role=role, **scope_of(scope), **flags)
    assert (decision.allowed, decision.reason) == (False, reason)
    assert not decision


def test_nobody_grants_a_role_to_themselves(department_admin):
    with override("en"):
        decision = can_grant(department_admin, grantee=department_admin, role=Role.DEPARTMENT_OFFICER)
    assert (decision.allowed, decision.reason) == (False, "You cannot grant a role to yourself.")


def test_nobody_grants_a_role_to_a_disabled_account(department_admin, newcomer):
    newcomer.is_active = False
    newcomer.save(update_fields=["is_active"])
    with override("en"):
        decision = can_grant(department_admin, grantee=newcomer, role=Role.DEPARTMENT_OFFICER)
    assert (decision.allowed, decision.reason) == (False, "This account is disabled.")


def test_nobody_grants_a_role_in_an_inactive_school(department_admin, newcomer, school):
    school.active = False
    with override("en"):
        decision = can_grant(department_admin, grantee=newcomer, role=Role.SUBJECT_TEACHER, school=school)
    assert (decision.allowed, decision.reason) == (False, "This school is not active.")


def test_a_grant_without_a_grantee_yet_is_judged_on_the_granters_standing(school_admin, school):
    assert can_grant(school_admin, grantee=None, role=Role.SUBJECT_TEACHER, school=school)


@pytest.mark.parametrize(
    ("granter", "role", "scope"),
    [
        ("department_admin", Role.DIVISION_OFFICER, "division_b"),
        ("division_manager", Role.VICE_PRINCIPAL, "school"),
        ("school_admin", Role.HOMEROOM_TEACHER, "school"),
        ("principal", Role.SUBJECT_TEACHER, "school"),
    ],
)
def test_the_allowed_grants_are_allowed_with_no_reason(persona, scope_of, newcomer, granter, role, scope):
    decision = can_grant(persona(granter), grantee=newcomer, role=role, **scope_of(scope))
    assert (decision.allowed, decision.reason) == (True, "")


def test_the_department_administrator_grants_the_flags(department_admin, newcomer, division_a):
    assert can_grant(
        department_admin, grantee=newcomer, role=Role.DIVISION_OFFICER, division=division_a, is_manager=True
    )
    assert can_grant(department_admin, grantee=newcomer, role=Role.DEPARTMENT_OFFICER, data_access=True)


# --- Revoking -----------------------------------------------------------------------------------


def test_a_revoked_role_cannot_be_revoked_again(school_admin, newcomer, school):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )
    role_assignment_revoke(actor=school_admin, assignment=assignment)
    assignment.refresh_from_db()
    with override("en"):
        decision = can_revoke(school_admin, assignment)
    assert (decision.allowed, decision.reason) == (False, "This role has already been revoked.")


def test_revoking_follows_the_grant_rule(school_admin, homeroom_teacher, newcomer, school):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )
    assert can_revoke(school_admin, assignment)
    with override("en"):
        assert can_revoke(homeroom_teacher, assignment).reason == OUTSIDE


# --- Managing an account (password, e-mail, active flag, second factor) ---------------------------


def test_a_superuser_manages_any_account(principal, newcomer):
    newcomer.is_superuser = True
    assert can_manage_account(newcomer, principal)


def test_a_disabled_actor_manages_nothing(school_admin, subject_teacher):
    school_admin.is_active = False
    with override("en"):
        decision = can_manage_account(school_admin, subject_teacher)
    assert (decision.allowed, decision.reason) == (False, "Your roles do not allow managing this account.")


def test_an_anonymous_visitor_manages_nothing(subject_teacher):
    with override("en"):
        decision = can_manage_account(AnonymousUser(), subject_teacher)  # type: ignore[arg-type]
    assert (decision.allowed, decision.reason) == (False, "Your roles do not allow managing this account.")


def test_nobody_manages_their_own_account_here(department_admin):
    with override("en"):
        decision = can_manage_account(department_admin, department_admin)
    assert (decision.allowed, decision.reason) == (
        False,
        "You cannot manage your own account here; use your account pages.",
    )


def test_only_a_superuser_manages_a_superuser(department_admin, newcomer):
    newcomer.is_superuser = True
    with override("en"):
        decision = can_manage_account(department_admin, newcomer)
    assert (decision.allowed, decision.reason) == (False, "Only a superuser manages a superuser's account.")


def test_an_account_without_roles_is_the_department_administrators(department_admin, school_admin, newcomer):
    assert can_manage_account(department_admin, newcomer)
    with override("en"):
        decision = can_manage_account(school_admin, newcomer)
    assert (decision.allowed, decision.reason) == (
        False,
        "This account holds no role; only the department administrator manages it.",
    )


def test_a_school_administrator_manages_its_teachers_not_its_principal(
    school_admin, subject_teacher, principal
):
    assert can_manage_account(school_admin, subject_teacher)
    with override("en"):
        decision = can_manage_account(school_admin, principal)
    assert not decision
    assert decision.reason.startswith("This account holds the role ")
    assert decision.reason.endswith(
        "which you may not grant; only whoever may grant all its roles may change its password, e-mail, "
        "active flag or second factor."
    )


def test_an_account_is_judged_by_every_role_it_holds(
    school_admin, department_admin, subject_teacher, division_a
):
    """A teacher who is also a division officer: the school administrator may not take it over."""
    role_assignment_grant(
        actor=department_admin, user=subject_teacher, role=Role.DIVISION_OFFICER, division=division_a
    )
    forget_access(subject_teacher)
    with override("en"):
        decision = can_manage_account(school_admin, subject_teacher)
    assert not decision and decision.reason.startswith("This account holds the role ")


def test_an_account_whose_roles_ended_is_judged_by_the_roles_it_held(
    school_admin, principal, newcomer, school
):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )
    role_assignment_revoke(actor=school_admin, assignment=assignment)
    assert can_manage_account(school_admin, newcomer)
    RoleAssignment.objects.create(
        user=newcomer, role=Role.PRINCIPAL, school=school, revoked_at=assignment.revoked_at
    )
    with override("en"):
        assert not can_manage_account(school_admin, newcomer)


# --- Capability questions -----------------------------------------------------------------------


def test_the_roles_held_are_read_once_and_forgotten_on_demand(school_admin, django_assert_num_queries):
    forget_access(school_admin)
    first = access_for(school_admin)
    with django_assert_num_queries(0):
        assert access_for(school_admin) is first
    forget_access(school_admin)
    forget_access(school_admin)  # forgetting twice is harmless
    assert access_for(school_admin) is not first


def test_a_disabled_account_holds_no_role(school_admin):
    school_admin.is_active = False
    forget_access(school_admin)
    assert access_for(school_admin).roles == set()


def test_the_access_of_each_kind_of_role(
    department_officer, division_manager, division_officer, principal, school
):
    officer = access_for(department_officer)
    assert officer.department_data and officer.is_department_staff and not officer.is_department_admin
    manager = access_for(division_manager)
    assert manager.managed_division_ids == manager.division_ids and not manager.data_division_ids
    plain = access_for(division_officer)
    assert plain.division_ids and not plain.managed_division_ids
    assert access_for(principal).roles_in_school(school.pk) == {Role.PRINCIPAL}
    assert access_for(principal).roles_in_school(-1) == set()


def test_a_school_is_visible_to_its_staff_its_division_and_the_department(
    subject_teacher, division_officer, other_division_officer, department_officer, school, direct_school
):
    assert school_is_visible(subject_teacher, school)
    assert school_is_visible(division_officer, school)
    assert school_is_visible(department_officer, school)
    assert not school_is_visible(other_division_officer, school)
    assert not school_is_visible(subject_teacher, direct_school)
    assert not school_is_visible(division_officer, direct_school)  # a school under no division


def test_school_data_is_opened_by_its_staff_and_only_granted_outsiders(
    subject_teacher, division_officer, department_officer, department_admin, division_a, school, direct_school
):
    assert can_open_school_data(subject_teacher, school)
    assert not can_open_school_data(division_officer, school)  # no data grant
    assert can_open_school_data(department_officer, school)  # the department's data grant
    assert can_open_school_data(department_officer, direct_school)
    assert not can_open_school_data(department_admin, school)  # administers, does not read
    RoleAssignment.objects.filter(user=division_officer).update(data_access=True)
    forget_access(division_officer)
    assert can_open_school_data(division_officer, school)
    assert not can_open_school_data(division_officer, direct_school)


def test_an_inactive_school_is_closed_to_its_own_staff(subject_teacher, school):
    school.active = False
    assert not can_open_school_data(subject_teacher, school)


def test_two_factor_is_asked_of_whoever_grants_signs_or_reads_beyond_a_class(
    persona, newcomer, department_officer, division_officer
):
    for name in ("department_admin", "school_admin", "principal", "vice_principal", "homeroom_teacher"):
        assert requires_two_factor(persona(name)), name
    assert requires_two_factor(persona("division_manager"))
    assert requires_two_factor(department_officer)  # a data grant
    assert not requires_two_factor(persona("subject_teacher"))
    assert not requires_two_factor(division_officer)
    assert not requires_two_factor(newcomer)
    newcomer.is_superuser = True
    assert requires_two_factor(newcomer)


def test_the_roles_offered_in_a_grant_form(persona):
    assert grantable_roles(persona("department_admin")) == list(Role.values)
    assert set(grantable_roles(persona("division_manager"))) == {
        Role.SCHOOL_ADMIN,
        Role.PRINCIPAL,
        Role.VICE_PRINCIPAL,
    }
    assert set(grantable_roles(persona("principal"))) == {Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER}
    assert grantable_roles(persona("vice_principal")) == []
    assert grantable_roles(persona("division_officer")) == []


def test_who_uses_the_admin_site(persona, newcomer):
    for name in (
        "department_admin",
        "department_officer",
        "division_officer",
        "school_admin",
        "principal",
        "vice_principal",
    ):
        assert can_use_admin(persona(name)), name
    for name in ("homeroom_teacher", "subject_teacher"):
        assert not can_use_admin(persona(name)), name
    assert not can_use_admin(AnonymousUser())
    principal = persona("principal")
    principal.is_active = False
    assert not can_use_admin(principal)


def test_only_operators_administer_the_province_and_unlock_logins(persona, newcomer):
    assert can_administer_province(persona("department_admin"))
    assert not can_administer_province(persona("department_officer"))
    assert can_unlock_logins(persona("department_admin"))
    assert not can_unlock_logins(persona("school_admin"))
    newcomer.is_superuser = True
    assert can_unlock_logins(newcomer)


def test_an_account_disabled_after_its_roles_were_read_loses_the_admin_site_at_once(principal):
    """The roles are cached on the user object for the request; the active flag is read each time."""
    assert can_use_admin(principal)  # reads and caches the roles
    principal.is_active = False
    assert not can_use_admin(principal)


def test_a_division_officer_with_a_data_grant_logs_in_with_a_second_factor(division_officer):
    RoleAssignment.objects.filter(user=division_officer).update(data_access=True)
    forget_access(division_officer)
    assert requires_two_factor(division_officer)
