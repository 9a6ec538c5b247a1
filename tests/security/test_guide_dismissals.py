"""The guides' buttons (portal.views_guides) act on the signed-in user only, and go back only
to a page of this site."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from portal.models import GuideDismissal
from portal.services_guides import guide_dismiss


def test_a_user_cannot_dismiss_a_guide_for_someone_else(client_as, subject_teacher, colleague):
    client = client_as(subject_teacher)
    for field in ("user", "user_id", "username"):
        client.post(
            "/huong-dan/open_gradebook/an/",
            {field: colleague.pk if field != "username" else colleague.username, "next": "/"},
        )
    assert not GuideDismissal.objects.filter(user=colleague).exists()
    assert GuideDismissal.objects.filter(user=subject_teacher, code="open_gradebook").count() == 1


def test_a_user_cannot_reopen_a_guide_someone_else_dismissed(client_as, subject_teacher, colleague):
    guide_dismiss(user=colleague, code="open_gradebook")
    client = client_as(subject_teacher)
    answer = client.post("/huong-dan/open_gradebook/mo-lai/", {"user": colleague.pk, "next": "/"})
    assert answer.status_code == 302
    assert GuideDismissal.objects.filter(user=colleague, code="open_gradebook").exists()


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example/phish",
        "javascript:alert(1)",
        "http:/evil.example",
        "",
        "x" * 5000,
    ],
)
def test_the_way_back_never_leaves_the_site(client_as, subject_teacher, next_url):
    answer = client_as(subject_teacher).post("/huong-dan/seal/an/", {"next": next_url})
    assert answer.status_code == 302
    location = urlsplit(answer["Location"])
    assert (location.scheme, location.netloc) == ("", "")
    assert answer["Location"].startswith("/") and not answer["Location"].startswith(("//", "/\\"))
    assert location.fragment == "guide-seal"


def test_a_hostile_address_is_escaped_in_the_guides_forms(client_as, subject_teacher):
    page = client_as(subject_teacher).get('/chu-ky-so/?q="><script>alert(1)</script>')
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="guide-register_certificate"' in html
    assert "<script>alert(1)</script>" not in html


@pytest.mark.parametrize("code", ["Sign_batch", "sign batch", "<script>", "", "x" * 41])
def test_the_database_refuses_a_dismissal_of_no_guide_code(subject_teacher, code):
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic():  # a check violation, or too long
        GuideDismissal.objects.create(user=subject_teacher, code=code)
