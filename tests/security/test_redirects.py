"""Open redirects: no form of the portal sends the browser to an address it was handed.

Every `back`/`next` we follow is checked: a path of this site (and, for a school form, of this
school), else the default page. Django's language switch and allauth's `next` check theirs; they
are replayed here so that a change of either is noticed.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tests.conftest import PASSWORD

HOSTILE_BACKS = [
    "https://evil.example/",
    "http://evil.example/truong/t-th-a/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "javascript:alert(1)",
    "https://testserver.evil.example/",
    "/truong/t-th-a/../../\\evil.example/",
    "/truong/t-thcs-b/",  # this site, but another school's page
    " https://evil.example/",
]


@pytest.mark.parametrize("back", HOSTILE_BACKS)
def test_the_signing_start_form_does_not_follow_a_back_address_elsewhere(
    client_as, homeroom_teacher, school, back
):
    response = client_as(homeroom_teacher).post(
        f"/truong/{school.code}/ky-so/bat-dau/", {"step": "homeroom", "certificate": "", "back": back}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/truong/{school.code}/ky-so/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Hãy chọn một chứng thư số đã đăng ký để ký."
    ]


def test_the_signing_start_form_goes_back_to_the_page_of_the_school_it_came_from(
    client_as, homeroom_teacher, school
):
    back = f"/truong/{school.code}/so-diem/ho-so/lop/1/?tab=ky"
    response = client_as(homeroom_teacher).post(
        f"/truong/{school.code}/ky-so/bat-dau/", {"step": "homeroom", "certificate": "", "back": back}
    )
    assert (response.status_code, response["Location"]) == (302, back)


def test_the_signing_start_form_over_https_does_not_go_back_over_http(client_as, homeroom_teacher, school):
    response = client_as(homeroom_teacher).post(
        f"/truong/{school.code}/ky-so/bat-dau/",
        {"step": "homeroom", "certificate": "", "back": f"http://testserver/truong/{school.code}/"},
        secure=True,
    )
    assert response["Location"] == f"/truong/{school.code}/ky-so/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_the_language_switch_does_not_follow_a_next_address_elsewhere(client, target):
    response = client.post("/i18n/setlang/", {"language": "en", "next": target})
    assert (response.status_code, response["Location"]) == (302, "/")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_the_login_does_not_follow_a_next_address_elsewhere(client, subject_teacher, target):
    response = client.post(
        "/accounts/login/", {"login": "subject_teacher", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_the_admin_login_hands_its_next_address_on_encoded(client):
    response = client.get("/admin/login/", {"next": "/admin/portal/user/?q=a&evil=1"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/portal/user/%3Fq%3Da%26evil%3D1"


def test_the_second_factor_enrolment_keeps_the_whole_address_to_come_back_to(client_as, principal, school):
    from allauth.mfa.models import Authenticator

    client = client_as(principal)
    Authenticator.objects.filter(user=principal).delete()
    response = client.get(f"/truong/{school.code}/so-diem/", {"a": "1", "b": "2"})
    assert response.status_code == 302
    assert response["Location"].endswith(f"?next=/truong/{school.code}/so-diem/%3Fa%3D1%26b%3D2")
