"""The sign-in page does not invite people to a sign-up that is closed (portal.adapters): it says
who makes accounts, in Vietnamese."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation

SAID = (
    "Your account is created by your school's administrator (or the department's operators for "
    "department and division staff). If you have none, ask them."
)


def test_the_login_page_offers_no_sign_up(client, db):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("account_signup") not in page
    with translation.override("vi"):
        said = translation.gettext(SAID)
    assert said != SAID and said in page.replace("&#x27;", "'")
