"""Tenant isolation: another school's pages answer 404, whatever URL is tried.

Every URL of the school URLconf is tried, so a page added later is covered without a new test.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

import config.urls_school


def school_paths(code: str) -> list[str]:
    """Every route of the school URLconf, with placeholder values for its arguments."""
    paths = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                for converter in ("<int:", "<str:", "<slug:", "<uuid:", "<path:"):
                    while converter in route:
                        start = route.index(converter)
                        end = route.index(">", start)
                        value = "00000000-0000-0000-0000-000000000001" if converter == "<uuid:" else "1"
                        route = route[:start] + value + route[end + 1 :]
                paths.append(f"/truong/{code}/{route}")

    walk(config.urls_school.urlpatterns)
    assert paths, "the school URLconf has no routes"
    return paths


def test_the_school_urlconf_is_mounted_under_truong():
    assert any("truong/" in str(p.pattern) for p in get_resolver().url_patterns)


def test_a_teacher_of_another_school_gets_404_on_every_page(client_as, teacher_of_another_school, school):
    client = client_as(teacher_of_another_school)
    for path in school_paths(school.code):
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code == 404, (method, path, response.status_code)


def test_a_teacher_of_the_school_is_let_in(client_as, subject_teacher, school):
    assert client_as(subject_teacher).get(f"/truong/{school.code}/").status_code == 200


@pytest.mark.parametrize(
    ("persona_name", "status"),
    [
        ("department_admin", 403),  # the operator knows the school, but has no data grant
        ("department_officer", 200),  # granted data access
        ("division_officer", 403),  # supervises the school, no data grant
        ("division_manager", 403),
        ("other_division_officer", 404),  # another division's school
        ("teacher_of_another_school", 404),
        ("other_school_admin", 404),
        ("principal", 200),
        ("vice_principal", 200),
        ("school_admin", 200),
        ("homeroom_teacher", 200),
        ("subject_teacher", 200),
    ],
)
def test_the_school_home_permission_matrix(client_as, persona, school, persona_name, status):
    response = client_as(persona(persona_name)).get(f"/truong/{school.code}/")
    assert response.status_code == status


def test_a_division_officer_with_a_data_grant_may_open_its_schools(client_as, department_admin, division_b):
    from portal.choices import Role
    from portal.models import School, User
    from portal.services import role_assignment_grant

    inspector = User.objects.create_user(username="thanhtra", password="x", full_name="Thanh Tra")
    role_assignment_grant(
        actor=department_admin,
        user=inspector,
        role=Role.DIVISION_OFFICER,
        division=division_b,
        data_access=True,
    )
    other = School.objects.get(code="t-thcs-b")
    first = School.objects.get(code="t-th-a")
    client = client_as(inspector)
    assert client.get(f"/truong/{other.code}/").status_code == 200
    assert client.get(f"/truong/{first.code}/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_login(client, school):
    response = client.get(f"/truong/{school.code}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_revoked_teacher_loses_the_school_at_once(client_as, school_admin, subject_teacher, school):
    from portal.models import RoleAssignment
    from portal.services import role_assignment_revoke

    client = client_as(subject_teacher)
    assert client.get(f"/truong/{school.code}/").status_code == 200
    role_assignment_revoke(actor=school_admin, assignment=RoleAssignment.objects.get(user=subject_teacher))
    assert client.get(f"/truong/{school.code}/").status_code == 404


def test_every_page_a_supervisor_opens_under_a_data_grant_is_logged(client_as, department_officer, school):
    from portal.choices import AuditAction
    from portal.models import AuditEntry

    client_as(department_officer).get(f"/truong/{school.code}/")

    entry = AuditEntry.objects.filter(action=AuditAction.SCHOOL_DATA_VIEWED).latest("id")
    assert (entry.actor, entry.school_id) == (department_officer, school.pk)
    assert f"/truong/{school.code}/" in entry.summary


def test_school_staff_visits_are_not_logged_as_supervision(client_as, subject_teacher, school):
    from portal.choices import AuditAction
    from portal.models import AuditEntry

    client_as(subject_teacher).get(f"/truong/{school.code}/")
    assert not AuditEntry.objects.filter(
        action=AuditAction.SCHOOL_DATA_VIEWED, actor=subject_teacher
    ).exists()
