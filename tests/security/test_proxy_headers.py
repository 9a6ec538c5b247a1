"""Behind the province's reverse proxy: X-Forwarded-For/-Proto believed from a trusted proxy only.

A client that writes these headers itself must not choose its login lock-out bucket or its
verification rate limit, nor make a plain-HTTP request look secure (portal.security,
TrustedProxyMiddleware; HOCBA_TRUSTED_PROXIES). Garbage in the headers is ignored, never a 500.
"""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from portal.lockout import login_lock_find
from portal.security import TrustedProxyMiddleware

PROXY = "10.9.0.2"
PROXIES = ["10.9.0.0/29", "2001:db8:9::/64"]
LOGIN = "/accounts/login/"


def _seen(meta: dict[str, str], trusted: list[str] = PROXIES) -> tuple[str, bool]:
    """(REMOTE_ADDR, is_secure()) as the views behind the middleware see them."""
    seen: dict[str, object] = {}

    def view(request):
        seen["addr"], seen["secure"] = request.META["REMOTE_ADDR"], request.is_secure()
        return HttpResponse()

    with override_settings(HOCBA_TRUSTED_PROXIES=trusted):
        TrustedProxyMiddleware(view)(RequestFactory().get("/", **meta))
    return seen["addr"], seen["secure"]  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        # From an untrusted address, the headers are the client's own words: ignored.
        ({"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}, ("203.0.113.7", False)),
        ({"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_PROTO": "https"}, ("203.0.113.7", False)),
        # From the proxy: the client it saw (the rightmost entry), and its scheme.
        (
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.1", "HTTP_X_FORWARDED_PROTO": "https"},
            ("198.51.100.1", True),
        ),
        ({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "http"}, (PROXY, False)),
        # What the client wrote to the left of what the proxy appended does not count.
        ({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "1.1.1.1, 198.51.100.1"}, ("198.51.100.1", False)),
        # A chain of trusted proxies is walked back to the first untrusted entry.
        (
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "1.1.1.1, 198.51.100.1, 10.9.0.3"},
            ("198.51.100.1", False),
        ),
        ({"REMOTE_ADDR": "2001:db8:9::5", "HTTP_X_FORWARDED_FOR": "2001:db8:1::7"}, ("2001:db8:1::7", False)),
        ({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.1:4711"}, ("198.51.100.1", False)),
        ({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "[2001:db8:1::7]:443"}, ("2001:db8:1::7", False)),
        # The nearest proxy's scheme is the last one.
        ({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "https, http"}, (PROXY, False)),
        ({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "http, HTTPS"}, (PROXY, True)),
    ],
)
def test_forwarded_headers_count_only_from_a_trusted_proxy(meta, expected):
    assert _seen(meta) == expected


@pytest.mark.parametrize(
    "forwarded_for",
    [
        "not-an-address",
        "198.51.100.1, garbage",
        "garbage, 198.51.100.1, ",
        "999.1.1.1",
        "[2001:db8::1",
        "",
        " , , ",
        "198.51.100.1\x00",
        "١٩٨.٥١.١٠٠.١",  # Arabic-Indic digits
        ",".join(["198.51.100.1"] * 1000),
    ],
)
def test_a_malformed_forwarded_for_leaves_the_proxy_as_the_client(forwarded_for):
    addr, _secure = _seen({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": forwarded_for})
    assert addr == PROXY


@pytest.mark.parametrize("proto", ["ftp", "", "https https", "ht\x00tps", "https;", "x" * 10_000])
def test_a_malformed_forwarded_proto_is_not_secure(proto):
    assert _seen({"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": proto})[1] is False


def test_without_trusted_proxies_nothing_forwarded_counts():
    meta = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.1", "HTTP_X_FORWARDED_PROTO": "https"}
    assert _seen(meta, trusted=[]) == (PROXY, False)


def test_a_bad_trusted_proxy_entry_stops_the_start():
    with (
        override_settings(HOCBA_TRUSTED_PROXIES=["10.0.0.0/8", "the-proxy"]),
        pytest.raises(ImproperlyConfigured, match="the-proxy"),
    ):
        TrustedProxyMiddleware(lambda request: HttpResponse())


# --- Through the whole middleware chain and the real lock-out counters (Redis) ----------------


@pytest.fixture
def behind_proxy(settings):
    settings.HOCBA_TRUSTED_PROXIES = PROXIES
    settings.HOCBA_LOGIN_ADDRESS_FAILURES = 3
    return settings


def _fresh(prefix: str) -> str:
    n = uuid.uuid4().int
    return f"{prefix}.{n % 250}.{(n >> 8) % 250 + 1}"


def _wrong_passwords(client, times: int, **meta: str) -> None:
    for _ in range(times):
        login = f"khong-co-{uuid.uuid4().hex[:8]}"  # a new login each time: only the address counts
        response = client.post(LOGIN, {"login": login, "password": "sai-mat-khau"}, **meta)
        assert response.status_code == 200


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_does_not_move_a_client_out_of_its_lockout_bucket(client, behind_proxy):
    attacker = _fresh("203.0")
    for _ in range(3):
        _wrong_passwords(client, 1, REMOTE_ADDR=attacker, HTTP_X_FORWARDED_FOR=_fresh("198.51"))

    assert login_lock_find(login="anyone", address=attacker) is not None


@pytest.mark.django_db
def test_clients_behind_the_trusted_proxy_have_buckets_of_their_own(client, behind_proxy):
    first, second = _fresh("198.18"), _fresh("198.19")
    _wrong_passwords(client, 3, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=first)

    assert login_lock_find(login="anyone", address=first) is not None
    assert login_lock_find(login="anyone", address=second) is None
    assert login_lock_find(login="anyone", address=PROXY) is None
    page = client.get(LOGIN, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=second)
    assert page.status_code == 200


@pytest.mark.django_db
def test_a_spoofed_forwarded_proto_does_not_pass_the_https_redirect(client, behind_proxy):
    behind_proxy.SECURE_SSL_REDIRECT = True
    behind_proxy.SECURE_HSTS_SECONDS = 365 * 24 * 3600  # as outside DEBUG (`make test` runs with it on)

    spoofed = client.get(LOGIN, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https")
    honest = client.get(LOGIN, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https")

    assert spoofed.status_code == 301 and spoofed["Location"].startswith("https://")
    assert "Strict-Transport-Security" not in spoofed.headers
    assert honest.status_code == 200
    assert honest.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_FORWARDED_FOR": "\u202e1.2.3.4", "HTTP_X_FORWARDED_PROTO": "\u00a0https"},
        {"HTTP_X_FORWARDED_FOR": "1.2.3.4/24", "HTTP_X_FORWARDED_PROTO": "https,,,"},
        {"HTTP_X_FORWARDED_FOR": "::ffff:1.2.3.4", "HTTP_X_FORWARDED_PROTO": "HTTPS"},
    ],
)
@pytest.mark.parametrize("remote", [PROXY, "203.0.113.10"])
def test_garbage_in_forwarded_headers_is_never_a_500(client, behind_proxy, headers, remote):
    response = client.get(LOGIN, REMOTE_ADDR=remote, **headers)
    assert response.status_code == 200
