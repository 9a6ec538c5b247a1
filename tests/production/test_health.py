"""/healthz and /readyz (portal.health): liveness without the stores, readiness naming what failed."""

from __future__ import annotations

import socket

import pytest

from portal import health


@pytest.fixture
def redis_down(settings, monkeypatch):
    """REDIS_URL on a loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setattr(health, "_redis_client", None)
    yield
    health._redis_client = None


@pytest.mark.django_db
def test_readiness_answers_503_naming_redis_when_redis_is_down(client, redis_down):
    live = client.get("/healthz")
    ready = client.get("/readyz")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "failed": ["redis"]}
    assert "127.0.0.1" not in ready.content.decode()  # no address, no URL, no secret


@pytest.mark.django_db
def test_readiness_is_ok_with_both_stores(client):
    health._redis_client = None
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_only_get_and_head_are_probes(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 404
