"""The landing page, the department and division overviews, and the language."""

from __future__ import annotations

import pytest


def test_the_landing_page_lists_every_place_the_user_works(
    client_as, department_admin, subject_teacher, other_school, school
):
    from portal.choices import Role
    from portal.services import role_assignment_grant

    role_assignment_grant(
        actor=department_admin, user=subject_teacher, role=Role.SUBJECT_TEACHER, school=other_school
    )
    response = client_as(subject_teacher).get("/")
    places = [w["place"] for w in response.context["workplaces"]]
    assert {p.code for p in places} == {school.code, other_school.code}
    page = response.content.decode()
    assert f'href="/truong/{school.code}/"' in page and f'href="/truong/{other_school.code}/"' in page


def test_a_user_without_roles_is_told_so(client, db):
    from portal.models import User

    client.force_login(User.objects.create_user(username="chua-co-vai-tro", password="x"))
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="vi")
    assert response.status_code == 200
    assert response.context["workplaces"] == []


def test_pages_are_in_vietnamese_by_default(client_as, homeroom_teacher):
    page = client_as(homeroom_teacher).get("/").content.decode()
    assert "Nơi làm việc" in page
    assert "Giáo viên chủ nhiệm" in page


def test_english_can_be_chosen(client_as, homeroom_teacher):
    client = client_as(homeroom_teacher)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get("/").content.decode()
    assert "Where you work" in page and "Homeroom teacher" in page


@pytest.mark.parametrize(
    ("persona_name", "status"),
    [("department_admin", 200), ("department_officer", 200), ("division_manager", 404), ("principal", 404)],
)
def test_the_department_overview_is_for_department_staff(client_as, persona, persona_name, status):
    assert client_as(persona(persona_name)).get("/so/").status_code == status


@pytest.mark.parametrize(
    ("persona_name", "division", "status"),
    [
        ("division_officer", "t-div-a", 200),
        ("division_officer", "t-div-b", 404),
        ("other_division_officer", "t-div-a", 404),
        ("department_officer", "t-div-b", 200),
        ("principal", "t-div-a", 404),
    ],
)
def test_a_division_page_is_for_its_officers_and_the_department(
    client_as, persona, persona_name, division, status
):
    assert client_as(persona(persona_name)).get(f"/don-vi/{division}/").status_code == status


def test_a_division_page_lists_its_schools_without_links_for_officers_lacking_data_access(
    client_as, division_officer, school
):
    response = client_as(division_officer).get("/don-vi/t-div-a/")
    page = response.content.decode()
    assert school.name in page
    assert f'href="/truong/{school.code}/"' not in page


def test_the_school_home_tells_a_principal_what_they_do_and_who_works_there(client_as, principal, school):
    response = client_as(principal).get(f"/truong/{school.code}/")
    assert response.status_code == 200
    names = {p["user"].username for p in response.context["staff"]}
    assert {"principal", "subject_teacher", "homeroom_teacher"} <= names


def test_a_teacher_does_not_see_the_staff_list(client_as, subject_teacher, school):
    response = client_as(subject_teacher).get(f"/truong/{school.code}/")
    assert response.context["staff"] is None


def test_the_list_pages_cost_a_fixed_number_of_queries(
    client_as, department_officer, django_assert_max_num_queries
):
    client = client_as(department_officer)
    client.get("/so/")
    # The dashboards (issue 12): nine and eight statements, and no SET search_path (the connection
    # stays on public; tests/portal/test_dashboards.py counts them exactly, for 3 and 30 schools).
    with django_assert_max_num_queries(9):
        assert client.get("/so/").status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get("/don-vi/t-div-a/").status_code == 200
