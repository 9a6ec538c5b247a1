"""The grade book offline, server side: the service worker's script under the school's grade-book
URLs (its scope), who is signed in (for the page's queue), and sign-out clearing what was kept."""

from __future__ import annotations

from django.db import connection

from tests.conftest import SCHOOLS


def worker_url(code: str = SCHOOLS["school"][0]) -> str:
    return f"/truong/{code}/so-diem/sw.js"


def test_the_worker_is_served_in_the_grade_books_scope_with_its_assets_and_who_is_signed_in(
    client_as, subject_teacher
):
    response = client_as(subject_teacher).get(worker_url())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Cache-Control"] == "no-cache, private"  # a new version is picked up at once
    assert response["X-Hocba-User"] == str(subject_teacher.pk)
    body = response.content.decode()
    assets = '["/static/js/gradebook.js", "/static/js/portal.js", "/static/css/portal.css"]'
    assert body.startswith(f"self.HOCBA_ASSETS = {assets};")
    assert 'self.HOCBA_STATIC = "/static/";' in body
    assert 'addEventListener("fetch"' in body


def test_asking_who_is_signed_in_is_a_head_without_the_script(client_as, colleague):
    response = client_as(colleague).head(worker_url())
    assert response.status_code == 200
    assert response["X-Hocba-User"] == str(colleague.pk)
    assert response.content == b""


def test_a_visitor_signed_out_is_sent_to_sign_in_and_nobody_learns_who_is_signed_in(client, db):
    response = client.head(worker_url())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "X-Hocba-User" not in response


def test_a_teacher_of_another_school_does_not_get_this_schools_worker(client_as, persona):
    client = client_as(persona("teacher_of_another_school"))
    assert client.get(worker_url()).status_code == 404
    assert client.get(worker_url("no-such-school")).status_code == 404


def test_the_grade_book_and_the_homeroom_page_tell_the_script_who_is_signed_in(
    client_as, subject_teacher, homeroom_teacher, school, secondary_class
):
    code = school.code
    book = client_as(subject_teacher).get(f"/truong/{code}/so-diem/{secondary_class.pk}/toan/")
    homeroom = client_as(homeroom_teacher).get(f"/truong/{code}/so-diem/lop/{secondary_class.pk}/")
    connection.set_schema_to_public()
    for response, user in ((book, subject_teacher), (homeroom, homeroom_teacher)):
        assert response.status_code == 200
        page = response.content.decode()
        assert f'data-user="{user.pk}" data-school="{code}" data-sw="{worker_url(code)}"' in page


def test_signing_out_asks_the_browser_to_clear_the_kept_pages_and_the_queue(client_as, subject_teacher):
    client = client_as(subject_teacher)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Clear-Site-Data"] == '"cache", "storage"'
    assert client.head(worker_url()).status_code == 302  # signed out indeed


def test_the_sign_out_page_itself_clears_nothing(client_as, subject_teacher):
    response = client_as(subject_teacher).get("/accounts/logout/")
    assert response.status_code == 200
    assert "Clear-Site-Data" not in response
