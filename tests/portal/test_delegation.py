"""The delegation rule: who may grant which role where. Each allowed and each refused grant."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import override

from portal.choices import AuditAction, Role
from portal.models import AuditEntry, RoleAssignment, User
from portal.permissions import access_for, can_grant
from portal.services import role_assignment_grant, role_assignment_revoke, role_assignments_expire


@pytest.fixture
def newcomer(db) -> User:
    return User.objects.create_user(username="newcomer", password="x", full_name="Người Mới")


@pytest.fixture
def scope_of(school, other_school, direct_school, division_a, division_b):
    """scope_of("school") -> the keyword arguments that name that scope in a grant."""
    scopes = {
        "school": {"school": school},
        "other_school": {"school": other_school},
        "direct_school": {"school": direct_school},
        "division_a": {"division": division_a},
        "division_b": {"division": division_b},
        "department": {},
    }
    return scopes.__getitem__


# (granter, role, scope, extra flags)
ALLOWED = [
    ("department_admin", Role.DEPARTMENT_ADMIN, "department", {}),
    ("department_admin", Role.DEPARTMENT_OFFICER, "department", {"data_access": True}),
    ("department_admin", Role.DIVISION_OFFICER, "division_b", {"is_manager": True}),
    ("department_admin", Role.PRINCIPAL, "direct_school", {}),
    ("department_admin", Role.SUBJECT_TEACHER, "other_school", {}),
    ("division_manager", Role.SCHOOL_ADMIN, "school", {}),
    ("division_manager", Role.PRINCIPAL, "school", {}),
    ("division_manager", Role.VICE_PRINCIPAL, "school", {}),
    ("other_division_officer", Role.PRINCIPAL, "other_school", {}),
    ("school_admin", Role.HOMEROOM_TEACHER, "school", {}),
    ("school_admin", Role.SUBJECT_TEACHER, "school", {}),
    ("principal", Role.SUBJECT_TEACHER, "school", {}),
]

REFUSED = [
    # above their own scope
    ("division_manager", Role.DIVISION_OFFICER, "division_a", {}),
    ("division_manager", Role.DEPARTMENT_OFFICER, "department", {}),
    ("school_admin", Role.PRINCIPAL, "school", {}),
    ("school_admin", Role.SCHOOL_ADMIN, "school", {}),
    ("principal", Role.VICE_PRINCIPAL, "school", {}),
    # outside their scope
    ("division_manager", Role.PRINCIPAL, "other_school", {}),
    ("division_manager", Role.PRINCIPAL, "direct_school", {}),
    ("school_admin", Role.SUBJECT_TEACHER, "other_school", {}),
    ("other_school_admin", Role.SUBJECT_TEACHER, "school", {}),
    # roles that grant nothing
    ("division_officer", Role.PRINCIPAL, "school", {}),
    ("department_officer", Role.SUBJECT_TEACHER, "school", {}),
    ("vice_principal", Role.SUBJECT_TEACHER, "school", {}),
    ("homeroom_teacher", Role.SUBJECT_TEACHER, "school", {}),
    ("subject_teacher", Role.SUBJECT_TEACHER, "school", {}),
    # flags only the department administrator grants
    ("division_manager", Role.PRINCIPAL, "school", {"data_access": True}),
    # the role does not fit the scope
    ("department_admin", Role.PRINCIPAL, "division_a", {}),
    ("department_admin", Role.DIVISION_OFFICER, "school", {}),
    ("department_admin", Role.SUBJECT_TEACHER, "department", {}),
    ("department_admin", Role.PRINCIPAL, "school", {"is_manager": True}),
]


@pytest.mark.parametrize(("granter", "role", "scope", "flags"), ALLOWED)
def test_allowed_grants_take_effect_and_are_audited(persona, scope_of, newcomer, granter, role, scope, flags):
    actor = persona(granter)
    where = scope_of(scope)

    assignment = role_assignment_grant(actor=actor, user=newcomer, role=role, **where, **flags)

    assert assignment.granted_by == actor
    assert role in access_for(User.objects.get(pk=newcomer.pk)).roles
    entry = AuditEntry.objects.get(action=AuditAction.ROLE_GRANTED, object_id=str(assignment.pk))
    assert entry.actor == actor
    assert entry.changes["new"]["role"] == role


@pytest.mark.parametrize(("granter", "role", "scope", "flags"), REFUSED)
def test_refused_grants_change_nothing(persona, scope_of, newcomer, granter, role, scope, flags):
    actor = persona(granter)
    where = scope_of(scope)
    audit_rows = AuditEntry.objects.count()

    with pytest.raises(PermissionDenied):
        role_assignment_grant(actor=actor, user=newcomer, role=role, **where, **flags)

    assert not RoleAssignment.objects.filter(user=newcomer).exists()
    assert AuditEntry.objects.count() == audit_rows


def test_nobody_grants_a_role_to_themselves(department_admin, school_admin, school):
    decision = can_grant(department_admin, grantee=department_admin, role=Role.DEPARTMENT_OFFICER)
    assert not decision
    assert "yourself" in decision.reason or "chính mình" in decision.reason
    with override("en"), pytest.raises(PermissionDenied, match=r"You cannot grant a role to yourself"):
        role_assignment_grant(actor=school_admin, user=school_admin, role=Role.SUBJECT_TEACHER, school=school)


def test_the_same_role_cannot_be_held_twice_in_one_place(school_admin, subject_teacher, school):
    with override("en"), pytest.raises(ValidationError, match=r"This user already holds this role here"):
        role_assignment_grant(
            actor=school_admin, user=subject_teacher, role=Role.SUBJECT_TEACHER, school=school
        )


def test_a_teacher_may_hold_roles_in_several_schools(department_admin, subject_teacher, other_school):
    role_assignment_grant(
        actor=department_admin, user=subject_teacher, role=Role.SUBJECT_TEACHER, school=other_school
    )
    access = access_for(User.objects.get(pk=subject_teacher.pk))
    assert len(access.school_roles) == 2


def test_whoever_may_grant_a_role_may_revoke_it_and_the_revocation_is_audited(school_admin, newcomer, school):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )

    role_assignment_revoke(actor=school_admin, assignment=assignment)

    assignment.refresh_from_db()
    assert assignment.revoked_by == school_admin and assignment.revoked_at is not None
    assert Role.SUBJECT_TEACHER not in access_for(User.objects.get(pk=newcomer.pk)).roles
    entry = AuditEntry.objects.get(action=AuditAction.ROLE_REVOKED, object_id=str(assignment.pk))
    assert entry.actor == school_admin


@pytest.mark.parametrize(
    "revoker", ["homeroom_teacher", "other_school_admin", "division_officer", "subject_teacher"]
)
def test_those_who_could_not_grant_a_role_cannot_revoke_it(persona, school_admin, newcomer, school, revoker):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )
    with (
        override("en"),
        pytest.raises(PermissionDenied, match=r"Your roles do not allow granting this role in this scope"),
    ):
        role_assignment_revoke(actor=persona(revoker), assignment=assignment)
    assignment.refresh_from_db()
    assert assignment.revoked_at is None


def test_a_role_past_its_end_date_stops_counting_and_is_recorded_as_expired(school_admin, newcomer, school):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school, valid_until=tomorrow
    )
    assert Role.SUBJECT_TEACHER in access_for(User.objects.get(pk=newcomer.pk)).roles

    RoleAssignment.objects.filter(pk=assignment.pk).update(
        valid_until=timezone.localdate() - dt.timedelta(days=1)
    )

    assert Role.SUBJECT_TEACHER not in access_for(User.objects.get(pk=newcomer.pk)).roles
    assert role_assignments_expire() == 1
    assert AuditEntry.objects.filter(action=AuditAction.ROLE_EXPIRED, object_id=str(assignment.pk)).exists()
    assert role_assignments_expire() == 0


def test_the_audit_log_cannot_be_rewritten_even_with_sql(school_admin, newcomer, school):
    from django.db import connection, transaction
    from django.db.utils import DatabaseError

    role_assignment_grant(actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE portal_auditentry SET summary = 'nothing happened'")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditentry")
