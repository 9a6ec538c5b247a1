"""The security headers as production sends them (gunicorn, DEBUG off, TLS), and the HTTPS-only
rules behind the province's proxy (a stack on plain HTTP, the proxy's headers from 127.0.0.1)."""

from __future__ import annotations

import pytest

from tests.production_stack import ProductionStack, settings_under

ONE_YEAR = 365 * 24 * 3600
CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "font-src": {"'self'"},
    "connect-src": {"'self'"},
    "worker-src": {"'self'"},
    "manifest-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
}


def _csp(header: str) -> dict[str, set[str]]:
    directives: dict[str, set[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = set(sources)
    return directives


def _static_url(client) -> str:
    page = client.get("/accounts/login/").text
    start = page.index('href="/static/css/portal.') + len('href="')
    return page[start : page.index('"', start)]


def _kinds(client) -> dict[str, object]:
    """A response of each kind: a page, the login page, a static file, a 404, an error page (a
    form refused for its CSRF token: 403) and a 400 (a NUL in the path)."""
    return {
        "home (redirect to login)": client.get("/"),
        "login page": client.get("/accounts/login/"),
        "static file": client.get(_static_url(client)),
        "404": client.get("/khong-co-trang-nay/"),
        "403 (CSRF)": client.post("/accounts/login/", data={"login": "x", "password": "y"}),
        "400 (NUL)": client.get("/tra-cuu/%00/"),
    }


@pytest.fixture(scope="module")
def responses(stack):
    with stack.client() as client:
        return _kinds(client)


@pytest.mark.parametrize(
    "kind", ["home (redirect to login)", "login page", "static file", "404", "403 (CSRF)", "400 (NUL)"]
)
def test_every_kind_of_response_carries_the_security_headers(responses, kind):
    response = responses[kind]
    headers = response.headers

    hsts = dict(
        (part.strip().partition("=")[0], part.strip().partition("=")[2])
        for part in headers["Strict-Transport-Security"].split(";")
    )
    assert int(hsts["max-age"]) >= ONE_YEAR
    assert "includeSubDomains" not in hsts and "preload" not in hsts
    assert _csp(headers["Content-Security-Policy"]) == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"] and "geolocation=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


def test_the_kinds_are_what_they_claim(responses):
    codes = {kind: response.status_code for kind, response in responses.items()}
    assert codes == {
        "home (redirect to login)": 302,
        "login page": 200,
        "static file": 200,
        "404": 404,
        "403 (CSRF)": 403,
        "400 (NUL)": 400,
    }


def test_session_and_csrf_cookies_are_secure_and_the_session_one_http_only(stack):
    with stack.client() as client:
        client.get("/accounts/login/")
        cookies = {cookie.name: cookie for cookie in client.cookies.jar}
    assert cookies["csrftoken"].secure
    # The session cookie appears at login; its flags come from the same settings, read as the
    # server's environment gives them.
    names = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY")
    assert settings_under(stack.env, *names) == dict.fromkeys(names, True)


# --- Behind the proxy: TLS ended in front, the scheme told by X-Forwarded-Proto -------------------


@pytest.fixture(scope="module")
def behind_proxy(django_db_setup, signing_trust):
    """The stack on plain HTTP, with 127.0.0.1 as its trusted proxy (as nginx on the same host)."""
    with ProductionStack.for_test_session(
        tls=False, workers=1, env={"HOCBA_TRUSTED_PROXIES": "127.0.0.1"}
    ) as stack:
        yield stack


def test_plain_http_is_redirected_to_https_without_hsts(behind_proxy):
    with behind_proxy.client() as client:
        response = client.get("/accounts/login/?next=/so/")

    assert response.status_code == 301
    assert (
        response.headers["Location"]
        == f"https://{behind_proxy.url.removeprefix('http://')}/accounts/login/?next=/so/"
    )
    assert "Strict-Transport-Security" not in response.headers


def test_https_told_by_the_trusted_proxy_is_served_with_hsts(behind_proxy):
    with behind_proxy.client() as client:
        response = client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})

    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith(f"max-age={ONE_YEAR}")


def test_the_health_probes_are_answered_over_plain_http_without_a_redirect(behind_proxy):
    with behind_proxy.client() as client:
        live = client.get("/healthz", headers={"Host": "10.0.0.5:8000"})  # a node's address as Host
        ready = client.get("/readyz")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    assert ready.headers["Cache-Control"] == "no-store"
