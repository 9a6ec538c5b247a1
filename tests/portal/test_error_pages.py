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
