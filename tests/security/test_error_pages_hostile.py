"""The error pages against hostile input (issue 14's polish): the CSRF page's "reload" link is
only ever a page of this site, escaped; a hostile path in a 404 is not echoed as markup; the number
filter never unescapes what it is given."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import Client


@pytest.mark.parametrize(
    "referer",
    [
        "javascript:alert(1)",
        "//evil.example/phish",
        "https://evil.example/",
        "http://testserver.evil.example/",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_the_csrf_page_offers_no_reload_link_to_another_site_or_a_script(db, referer):
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"login": "x"}, HTTP_REFERER=referer)
    page = response.content.decode()
    assert response.status_code == 403
    assert "evil.example" not in page and "javascript:" not in page and "data:text" not in page


def test_a_same_site_referer_with_markup_is_escaped_in_the_reload_link(db):
    referer = 'http://testserver/tra-cuu/?q="><script>alert(1)</script>'
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"login": "x"}, HTTP_REFERER=referer)
    page = response.content.decode()
    assert response.status_code == 403
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # escaped, and only as the link's target


def test_a_hostile_path_is_not_echoed_as_markup_by_the_404_page(client, db):
    response = client.get("/<script>alert(1)</script>/")
    assert response.status_code == 404
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_the_number_filter_escapes_text_it_does_not_rewrite():
    template = Template("{% load formats_vi %}{{ value|vi_number }}")
    assert template.render(Context({"value": "<b>5.9</b>"})) == "&lt;b&gt;5.9&lt;/b&gt;"
    assert template.render(Context({"value": "5.9"})) == "5,9"
