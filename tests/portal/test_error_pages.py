"""The portal's own error pages, in Vietnamese first: a 500 is rendered by Django with no context
and no request (templates/500.html must stand alone)."""

from __future__ import annotations

from django.test import RequestFactory
from django.utils import translation
from django.views.defaults import server_error


def test_the_server_error_page_is_the_portals_and_vietnamese():
    request = RequestFactory().get("/any/")
    with translation.override("vi"):
        response = server_error(request)
    page = response.content.decode()
    assert response.status_code == 500
    assert '<html lang="vi">' in page
    with translation.override("vi"):
        expected = translation.gettext("Something went wrong on our side")
    assert expected != "Something went wrong on our side" and expected in page
    assert "Server Error (500)" not in page  # not Django's bare page
    with translation.override("en"):
        assert "Something went wrong on our side" in server_error(request).content.decode()


# --- 404, 403, 400 and the CSRF failure: ours, Vietnamese, with a way on (issue 14) --------------

VERIFY_LINK = 'href="/tra-cuu/"'


def _vietnamese(text: str) -> str:
    with translation.override("vi"):
        translated = translation.gettext(text)
    assert translated != text, f"no Vietnamese for {text!r}"
    return translated


def _assert_our_page(response, status: int, title: str) -> str:
    page = response.content.decode()
    assert response.status_code == status
    assert '<html lang="vi">' in page
    assert _vietnamese(title) in page
    assert VERIFY_LINK in page  # the public verification page, for anyone
    assert "<h1>Not Found</h1>" not in page and "Forbidden (403)" not in page  # not Django's own
    return page


def test_an_unknown_address_answers_our_vietnamese_404_with_the_sign_in_page_for_a_visitor(client):
    page = _assert_our_page(client.get("/khong-co-trang-nay/"), 404, "Page not found")
    assert 'href="/accounts/login/"' in page


def test_an_unknown_address_sends_a_signed_in_user_back_to_where_they_work(client_as, subject_teacher):
    page = _assert_our_page(client_as(subject_teacher).get("/khong-co-trang-nay/"), 404, "Page not found")
    assert _vietnamese("Back to where you work") in page
    assert 'href="/accounts/login/"' not in page.split("<main", 1)[1]


def test_an_unknown_school_code_answers_our_404(client, client_as, subject_teacher):
    _assert_our_page(client.get("/truong/khong-co-truong/"), 404, "Page not found")
    _assert_our_page(
        client_as(subject_teacher).get("/truong/khong-co-truong/so-diem/"), 404, "Page not found"
    )


def test_an_unknown_page_inside_a_school_answers_our_404(client_as, subject_teacher, school):
    response = client_as(subject_teacher).get(f"/truong/{school.code}/khong-co-trang-nay/")
    page = _assert_our_page(response, 404, "Page not found")
    assert _vietnamese("Back to where you work") in page


def test_another_schools_pages_answer_our_404(client_as, teacher_of_another_school, school):
    response = client_as(teacher_of_another_school).get(f"/truong/{school.code}/so-diem/")
    _assert_our_page(response, 404, "Page not found")


def test_an_unknown_admin_page_answers_our_404(client_as, department_admin):
    response = client_as(department_admin).get("/admin/khong-co-trang-nay/")
    _assert_our_page(response, 404, "Page not found")


def test_an_unknown_api_address_answers_a_json_404_in_vietnamese(client):
    response = client.get("/api/khong-co/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "not_found" and body["message"] != body["message_en"]


def test_a_page_visible_but_forbidden_answers_our_403(client_as, subject_teacher):
    response = client_as(subject_teacher).get("/admin/", follow=True)  # a teacher has no admin
    page = _assert_our_page(response, 403, "Not allowed")
    assert _vietnamese("Back to where you work") in page


def test_a_malformed_request_answers_our_400_with_a_way_on(client):
    response = client.get("/tra-cuu/", {"code": "a\x00b"})  # portal.security refuses a NUL byte
    _assert_our_page(response, 400, "Request refused")


def test_a_form_sent_with_a_stale_token_says_to_reload_in_vietnamese(client, subject_teacher):
    from django.test import Client

    stale = Client(enforce_csrf_checks=True)
    response = stale.post(
        "/accounts/login/",
        {"login": "subject_teacher", "password": "x"},
        HTTP_REFERER="http://testserver/accounts/login/",
    )
    page = _assert_our_page(response, 403, "The form has expired")
    assert _vietnamese("Reload the page") in page
    assert 'href="http://testserver/accounts/login/"' in page
    assert "CSRF" not in page


def test_the_csrf_page_never_offers_to_reload_another_sites_page(subject_teacher):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"login": "x"}, HTTP_REFERER="https://evil.example/phish"
    )
    assert response.status_code == 403
    assert "evil.example" not in response.content.decode()


def test_another_schools_object_in_the_admin_answers_our_404(client_as, school_admin, other_school):
    response = client_as(school_admin).get(f"/admin/portal/school/{other_school.pk}/change/")
    _assert_our_page(response, 404, "Page not found")


def test_a_visitor_at_an_unknown_page_inside_a_school_gets_our_404_with_the_sign_in_page(client, school):
    page = _assert_our_page(client.get(f"/truong/{school.code}/khong-co-trang-nay/"), 404, "Page not found")
    assert 'href="/accounts/login/"' in page
