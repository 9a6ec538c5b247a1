"""The production stack itself (tests/production_stack.py): what runs is production's."""

from __future__ import annotations

import ssl

import httpx
import pytest


def test_the_stack_runs_gunicorn_with_debug_off_over_tls_from_its_own_ca(stack):
    assert stack.url.startswith("https://127.0.0.1:")
    assert stack.env["DJANGO_DEBUG"] == "0" and stack.env["HOCBA_TESTING"] == "0"
    assert len(stack.env["DJANGO_SECRET_KEY"]) >= 50

    with stack.client() as client:
        response = client.get("/healthz")

    assert response.status_code == 200
    assert "Booting worker" in stack.output()


def test_a_client_that_does_not_trust_the_throwaway_ca_is_refused(stack):
    with pytest.raises(httpx.ConnectError) as refused:
        httpx.get(f"{stack.url}/healthz", verify=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_a_page_with_debug_off_shows_no_debug_page(stack):
    """Debug off for real: an unknown address is the portal's 404, not Django's technical page."""
    with stack.client() as client:
        response = client.get("/khong-co-trang-nay/")

    assert response.status_code == 404
    assert "URLconf" not in response.text and "DEBUG = True" not in response.text
