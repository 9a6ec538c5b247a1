"""The admin site: each staff user sees and changes only what lies inside their scope."""

from __future__ import annotations

import pytest

from portal.choices import AuditAction, Role
from portal.models import AuditEntry, RoleAssignment, School, User


def changelist(client, model):
    response = client.get(f"/admin/portal/{model}/")
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].queryset)


def test_the_department_administrator_sees_every_school(client_as, department_admin):
    codes = {s.code for s in changelist(client_as(department_admin), "school")}
    assert {"t-th-a", "t-thcs-b", "t-thpt-c"} <= codes


def test_a_division_officer_sees_only_its_schools(client_as, division_officer, school):
    assert [s.code for s in changelist(client_as(division_officer), "school")] == [school.code]


def test_a_school_administrator_sees_only_its_school(client_as, school_admin, school):
    assert [s.code for s in changelist(client_as(school_admin), "school")] == [school.code]


def test_a_school_administrator_sees_only_its_schools_roles_and_people(client_as, school_admin, school):
    client = client_as(school_admin)
    assignments = changelist(client, "roleassignment")
    assert assignments and {a.school_id for a in assignments} == {school.pk}
    usernames = {u.username for u in changelist(client, "user")}
    assert "subject_teacher" in usernames
    assert not usernames & {"teacher_of_another_school", "department_admin", "other_division_officer"}


def test_a_division_officer_sees_its_divisions_audit_entries_only(
    client_as, department_admin, division_officer, school, other_school
):
    from portal.services import role_assignment_grant

    newcomer = User.objects.create_user(username="moi", password="x")
    role_assignment_grant(actor=department_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=school)
    role_assignment_grant(
        actor=department_admin, user=newcomer, role=Role.SUBJECT_TEACHER, school=other_school
    )

    entries = changelist(client_as(division_officer), "auditentry")
    assert {e.school_id for e in entries} == {school.pk}


@pytest.mark.parametrize(
    ("persona_name", "model", "code"),
    [
        ("school_admin", "school", "t-thcs-b"),
        ("division_officer", "school", "t-thpt-c"),
        ("school_admin", "user", "teacher_of_another_school"),
    ],
)
def test_an_object_outside_the_scope_answers_404_in_the_admin(client_as, persona, persona_name, model, code):
    pk = School.objects.get(code=code).pk if model == "school" else User.objects.get(username=code).pk
    response = client_as(persona(persona_name)).get(f"/admin/portal/{model}/{pk}/change/")
    assert response.status_code == 404


@pytest.mark.parametrize("persona_name", ["subject_teacher", "homeroom_teacher"])
def test_teachers_have_no_admin(client_as, persona, persona_name):
    assert client_as(persona(persona_name)).get("/admin/", follow=True).status_code == 403


def test_the_admin_login_is_the_portals_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    follow = client.get(response["Location"])
    assert follow.status_code == 302 and follow["Location"].startswith("/accounts/login/")


def test_a_school_administrator_grants_a_teacher_through_the_admin(client_as, school_admin, school):
    newcomer = User.objects.create_user(username="gv-moi", password="x", full_name="Giáo Viên Mới")
    client = client_as(school_admin)

    form = client.get("/admin/portal/roleassignment/add/")
    assert form.status_code == 200
    offered = {value for value, _label in form.context["adminform"].form.fields["role"].choices}
    assert offered == {Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER}

    response = client.post(
        "/admin/portal/roleassignment/add/",
        {"user": newcomer.username, "role": Role.SUBJECT_TEACHER, "school": school.pk},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assignment = RoleAssignment.objects.get(user=newcomer)
    assert assignment.granted_by == school_admin
    assert AuditEntry.objects.filter(
        action=AuditAction.ROLE_GRANTED, object_id=str(assignment.pk), actor=school_admin
    ).exists()
    # ...and the grant is visible in the admin's audit log.
    assert any(e.object_id == str(assignment.pk) for e in changelist(client, "auditentry"))


def test_a_school_administrator_cannot_grant_a_principal_through_the_admin(client_as, school_admin, school):
    newcomer = User.objects.create_user(username="hieu-truong-gia", password="x")
    response = client_as(school_admin).post(
        "/admin/portal/roleassignment/add/",
        {"user": newcomer.username, "role": Role.PRINCIPAL, "school": school.pk},
    )
    assert response.status_code == 200  # the form again, with the error
    assert not RoleAssignment.objects.filter(user=newcomer).exists()


def test_a_school_administrator_cannot_grant_in_another_school_through_the_admin(
    client_as, school_admin, other_school
):
    newcomer = User.objects.create_user(username="gv-khac", password="x")
    response = client_as(school_admin).post(
        "/admin/portal/roleassignment/add/",
        {"user": newcomer.username, "role": Role.SUBJECT_TEACHER, "school": other_school.pk},
    )
    assert response.status_code == 200
    assert not RoleAssignment.objects.filter(user=newcomer).exists()


def test_revoking_through_the_admin_action_is_audited(client_as, school_admin, subject_teacher):
    assignment = RoleAssignment.objects.get(user=subject_teacher)
    response = client_as(school_admin).post(
        "/admin/portal/roleassignment/",
        {"action": "revoke_selected", "_selected_action": [assignment.pk]},
    )
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.revoked_by == school_admin
    assert AuditEntry.objects.filter(action=AuditAction.ROLE_REVOKED, object_id=str(assignment.pk)).exists()


def test_the_department_administrator_provisions_a_school_from_the_admin(
    client_as, department_admin, division_a
):
    from django_tenants.utils import schema_exists

    response = client_as(department_admin).post(
        "/admin/portal/school/add/",
        {
            "code": "adm-01",
            "name": "Trường Tiểu học Mới",
            "levels": "primary",
            "division": division_a.pk,
            "address": "",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    school = School.objects.get(code="adm-01")
    assert schema_exists(school.schema_name)
    assert AuditEntry.objects.filter(action=AuditAction.SCHOOL_PROVISIONED, object_id=str(school.pk)).exists()


def test_a_division_officer_cannot_change_a_school(client_as, division_manager, school):
    response = client_as(division_manager).post(
        f"/admin/portal/school/{school.pk}/change/",
        {"name": "Đổi tên trái phép", "levels": "primary", "address": "", "active": "on"},
    )
    assert response.status_code == 403
    school.refresh_from_db()
    assert school.name != "Đổi tên trái phép"


def test_a_school_administrator_cannot_edit_a_department_administrator_who_teaches_there(
    client_as, department_admin, school_admin, school
):
    from portal.services import role_assignment_grant

    other_admin = User.objects.create_user(username="qt2", password="x")
    role_assignment_grant(actor=department_admin, user=other_admin, role=Role.DEPARTMENT_ADMIN)
    role_assignment_grant(actor=department_admin, user=other_admin, role=Role.SUBJECT_TEACHER, school=school)

    response = client_as(school_admin).get(f"/admin/portal/user/{other_admin.pk}/change/")
    assert response.status_code == 200  # visible: they teach in the school...
    assert not response.context["has_change_permission"]  # ...but not editable
    password_page = client_as(school_admin).get(f"/admin/portal/user/{other_admin.pk}/password/")
    assert password_page.status_code == 403


def test_a_grant_names_the_account_by_username_or_email_and_an_unknown_one_is_refused(
    client_as, school_admin, school
):
    User.objects.create_user(username="gv-thinh-giang", email="thinhgiang@test.local", password="x")
    client = client_as(school_admin)

    unknown = client.post(
        "/admin/portal/roleassignment/add/",
        {"user": "khong-ai-ca", "role": Role.SUBJECT_TEACHER, "school": school.pk},
        HTTP_ACCEPT_LANGUAGE="vi",
    )
    assert unknown.status_code == 200
    assert "khong-ai-ca" in str(unknown.context["adminform"].form.errors["user"])

    by_email = client.post(
        "/admin/portal/roleassignment/add/",
        {"user": "THINHGIANG@test.local", "role": Role.SUBJECT_TEACHER, "school": school.pk},
    )
    assert by_email.status_code == 302
    assert RoleAssignment.objects.filter(user__username="gv-thinh-giang", school=school).exists()


def test_a_new_account_leads_straight_to_granting_it_a_role(client_as, school_admin):
    response = client_as(school_admin).post(
        "/admin/portal/user/add/",
        {"username": "gv-moi-2", "full_name": "Giáo Viên Mới", "email": "", "password": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/portal/roleassignment/add/?user=gv-moi-2"
    assert User.objects.filter(username="gv-moi-2").exists()
