"""Every refusal of the public schema's services, met alone, with its reason (issue 9, finding 14):
grants (the rule's reason passed on, an end date in the past, a role held twice), revocations,
expiry, school changes and the first department administrator.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import override

from portal.choices import AuditAction, Role
from portal.models import AuditEntry, RoleAssignment, User
from portal.services import (
    department_admin_bootstrap,
    role_assignment_grant,
    role_assignment_revoke,
    role_assignments_expire,
    school_data_view_record,
    school_update,
    user_changes_record,
    user_create,
)


@pytest.fixture
def newcomer(db) -> User:
    return User.objects.create_user(username="newcomer", password="x", full_name="Người Mới")


def test_a_refused_grant_carries_the_rules_reason(school_admin, newcomer, school):
    with override("en"), pytest.raises(PermissionDenied) as refused:
        role_assignment_grant(actor=school_admin, user=newcomer, role=Role.PRINCIPAL, school=school)
    assert str(refused.value) == "Your roles do not allow granting this role in this scope."
    assert not RoleAssignment.objects.filter(user=newcomer).exists()


def test_a_grant_ending_in_the_past_is_refused(school_admin, newcomer, school):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    with override("en"), pytest.raises(ValidationError) as refused:
        role_assignment_grant(
            actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school, valid_until=yesterday
        )
    assert refused.value.message_dict == {"valid_until": ["The end date is in the past."]}
    assert not RoleAssignment.objects.filter(user=newcomer).exists()


def test_a_grant_ending_today_is_accepted(school_admin, newcomer, school):
    today = timezone.localdate()
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school, valid_until=today
    )
    assert assignment.valid_until == today


def test_a_role_held_already_in_that_place_is_refused(school_admin, subject_teacher, school):
    with override("en"), pytest.raises(ValidationError) as refused:
        role_assignment_grant(
            actor=school_admin, user=subject_teacher, role=Role.SUBJECT_TEACHER, school=school
        )
    assert refused.value.messages == ["This user already holds this role here."]


def test_a_revoked_role_can_be_granted_again(school_admin, newcomer, school):
    first = role_assignment_grant(actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school)
    role_assignment_revoke(actor=school_admin, assignment=first)
    again = role_assignment_grant(actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school)
    assert again.pk != first.pk and again.revoked_at is None


def test_a_grant_is_audited_with_the_new_assignment(school_admin, newcomer, school):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.HOMEROOM_TEACHER, school=school
    )
    entry = AuditEntry.objects.get(action=AuditAction.ROLE_GRANTED, object_id=str(assignment.pk))
    assert entry.changes == {
        "new": {
            "user": "newcomer",
            "role": Role.HOMEROOM_TEACHER,
            "division": None,
            "school": school.code,
            "is_manager": False,
            "data_access": False,
            "valid_until": None,
        }
    }
    assert (entry.actor, entry.school, entry.division) == (school_admin, school, school.division)


def test_a_refused_revocation_carries_the_rules_reason(school_admin, homeroom_teacher, newcomer, school):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )
    with override("en"), pytest.raises(PermissionDenied) as refused:
        role_assignment_revoke(actor=homeroom_teacher, assignment=assignment)
    assert str(refused.value) == "Your roles do not allow granting this role in this scope."


def test_a_role_is_revoked_once(school_admin, newcomer, school):
    assignment = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school
    )
    role_assignment_revoke(actor=school_admin, assignment=assignment)
    with override("en"), pytest.raises(PermissionDenied) as refused:
        role_assignment_revoke(actor=school_admin, assignment=assignment)
    assert str(refused.value) == "This role has already been revoked."
    entry = AuditEntry.objects.get(action=AuditAction.ROLE_REVOKED, object_id=str(assignment.pk))
    assert entry.changes["old"]["role"] == Role.SUBJECT_TEACHER


def test_only_roles_past_their_end_date_expire(school_admin, newcomer, school):
    today = timezone.localdate()
    ends_today = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school, valid_until=today
    )
    ended = role_assignment_grant(
        actor=school_admin, user=newcomer, role=Role.HOMEROOM_TEACHER, school=school, valid_until=today
    )
    RoleAssignment.objects.filter(pk=ended.pk).update(valid_until=today - dt.timedelta(days=1))
    assert role_assignments_expire() == 1
    ended.refresh_from_db()
    ends_today.refresh_from_db()
    assert ended.revoked_at is not None and ended.revoked_by == school_admin
    assert ends_today.revoked_at is None
    assert role_assignments_expire(today=today + dt.timedelta(days=1)) == 1


def test_an_expired_role_granted_by_nobody_is_recorded_as_ended_by_its_holder(newcomer, school):
    assignment = RoleAssignment.objects.create(
        user=newcomer, role=Role.SUBJECT_TEACHER, school=school, valid_until=timezone.localdate()
    )
    RoleAssignment.objects.filter(pk=assignment.pk).update(
        valid_until=timezone.localdate() - dt.timedelta(days=1)
    )
    assert role_assignments_expire() == 1
    assignment.refresh_from_db()
    assert assignment.revoked_by == newcomer
    entry = AuditEntry.objects.get(action=AuditAction.ROLE_EXPIRED, object_id=str(assignment.pk))
    assert entry.actor is None and entry.school == school
    assert entry.division == school.division  # a school's role is logged in its division too


def test_an_account_made_without_a_password_cannot_log_in_with_one(department_admin):
    user = user_create(actor=department_admin, username="khong-mat-khau", full_name="Không Mật Khẩu")
    assert not user.has_usable_password()
    with_password = user_create(
        actor=department_admin, username="co-mat-khau", full_name="Có", password="s3cret-2026"
    )
    assert with_password.check_password("s3cret-2026")
    assert AuditEntry.objects.filter(action=AuditAction.USER_CREATED, object_id=str(user.pk)).exists()


def test_an_invalid_account_is_refused_before_it_is_saved(department_admin):
    with pytest.raises(ValidationError) as refused:
        user_create(actor=department_admin, username="co khoang trang!", full_name="X")
    assert "username" in refused.value.message_dict
    assert not User.objects.filter(full_name="X").exists()


def test_an_account_form_that_changed_nothing_writes_no_audit_row(department_admin, newcomer):
    before = AuditEntry.objects.count()
    user_changes_record(actor=department_admin, user=newcomer, changed={})
    assert AuditEntry.objects.count() == before
    user_changes_record(actor=department_admin, user=newcomer, changed={"email": ("", "a@b.vn")})
    entry = AuditEntry.objects.filter(action=AuditAction.USER_CHANGED).latest("pk")
    assert entry.changes == {"email": {"old": "", "new": "a@b.vn"}}


def test_a_schools_code_cannot_be_changed(department_admin, school):
    with pytest.raises(ValueError, match="school_update cannot change 'code'"):
        school_update(actor=department_admin, school=school, code="doi-ma")


def test_a_school_update_that_changes_nothing_writes_no_audit_row(department_admin, school):
    before = AuditEntry.objects.count()
    school_update(actor=department_admin, school=school, name=school.name)
    assert AuditEntry.objects.count() == before


def test_a_school_update_is_audited_with_old_and_new(department_admin, school, division_b):
    old_division = school.division
    changed = school_update(actor=department_admin, school=school, address="1 Đường Mới", division=division_b)
    assert changed.division == division_b
    entry = AuditEntry.objects.filter(action=AuditAction.SCHOOL_CHANGED).latest("pk")
    assert entry.changes == {
        "address": {"old": school.address, "new": "1 Đường Mới"},
        "division": {"old": old_division.code, "new": division_b.code},
    }


def test_an_invalid_school_change_is_refused(department_admin, school):
    with pytest.raises(ValidationError) as refused:
        school_update(actor=department_admin, school=school, name="")
    assert "name" in refused.value.message_dict


def test_a_second_department_administrator_is_not_bootstrapped(department_admin, newcomer):
    with override("en"), pytest.raises(PermissionDenied) as refused:
        department_admin_bootstrap(user=newcomer)
    assert str(refused.value) == "A department administrator already exists; ask them to grant the role."


def test_the_first_department_administrator_is_bootstrapped_when_none_is_current(department_admin, newcomer):
    RoleAssignment.objects.filter(user=department_admin).update(
        revoked_at=timezone.now(), revoked_by=newcomer
    )
    assignment = department_admin_bootstrap(user=newcomer)
    assert assignment.role == Role.DEPARTMENT_ADMIN
    assert AuditEntry.objects.filter(action=AuditAction.ROLE_GRANTED, object_id=str(assignment.pk)).exists()


def test_a_data_view_is_logged_in_public_and_the_school_stays_active(department_officer, school):
    connection.set_tenant(school)
    try:
        entry = school_data_view_record(user=department_officer, school=school, path="/truong/x/")
        assert connection.schema_name == school.schema_name
    finally:
        connection.set_schema_to_public()
    assert entry.school_id == school.pk and entry.actor == department_officer
    connection.set_schema_to_public()
    school_data_view_record(user=department_officer, school=school, path="/truong/y/")
    assert connection.schema_name == "public"
