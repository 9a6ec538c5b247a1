"""Schools under /truong/<code>/: the school is found from the path, through a cache."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.services import school_update


def school_url(school, name="schools:home", **kwargs):
    return reverse(name, kwargs={"school_code": school.code, **kwargs})


def test_a_school_page_lives_under_its_code(client_as, homeroom_teacher, school):
    response = client_as(homeroom_teacher).get(f"/truong/{school.code}/")
    assert response.status_code == 200
    assert response.context["school"].pk == school.pk
    assert school.name in response.content.decode()


def test_the_code_in_the_url_is_case_insensitive(client_as, homeroom_teacher, school):
    assert client_as(homeroom_teacher).get(f"/truong/{school.code.upper()}/").status_code == 200


def test_an_unknown_school_answers_404(client_as, homeroom_teacher):
    assert client_as(homeroom_teacher).get("/truong/khong-co-truong-nay/").status_code == 404


def test_the_request_runs_in_the_school_schema_and_returns_to_public(client_as, homeroom_teacher, school):
    response = client_as(homeroom_teacher).get(school_url(school))
    assert response.status_code == 200
    assert response.wsgi_request.school.schema_name == school.schema_name
    assert connection.schema_name == "public"


def test_a_warm_request_does_not_query_for_the_school(client_as, homeroom_teacher, school):
    client = client_as(homeroom_teacher)
    client.get(school_url(school))  # warms the route cache

    with CaptureQueriesContext(connection) as queries:
        assert client.get(school_url(school)).status_code == 200

    assert not [q["sql"] for q in queries if "portal_school" in q["sql"]]


def test_the_school_home_costs_a_fixed_number_of_queries(
    client_as, principal, school, django_assert_max_num_queries
):
    client = client_as(principal)
    client.get(school_url(school))
    # The user, their roles, the second-factor check, the school year, the staff list and the
    # school's messages to the Ministry (registry's panel, one query while none is rejected); no SET
    # search_path: the warm request left the connection on the school's schema (docs/architecture.md).
    with django_assert_max_num_queries(6):
        client.get(school_url(school))


def test_a_renamed_school_shows_its_new_name_at_once(
    client_as, department_admin, homeroom_teacher, school, django_capture_on_commit_callbacks
):
    client = client_as(homeroom_teacher)
    client.get(school_url(school))

    with django_capture_on_commit_callbacks(execute=True):
        school_update(actor=department_admin, school=school, name="Trường Tiểu học Đổi Tên")

    assert "Trường Tiểu học Đổi Tên" in client.get(school_url(school)).content.decode()


def test_public_pages_run_in_the_public_schema(client_as, homeroom_teacher):
    response = client_as(homeroom_teacher).get("/")
    assert response.status_code == 200
    assert response.wsgi_request.school is None
