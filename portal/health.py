"""Health endpoints for the load balancer and the process supervisor (docs/operations.md).

- `/healthz`, liveness: this process answers. No database, no Redis: a restart cures nothing a
  database outage causes, so liveness must not fail because of one.
- `/readyz`, readiness: one cheap query to PostgreSQL and a PING to Redis; 503 with a JSON body
  naming what failed ("database", "redis"). Neither body carries a secret, an address or school
  data.

They are answered by a middleware placed before everything else (after the trusted-proxy one),
not by a view: the probes of a load balancer come over plain HTTP on the private network, with
the node's address as Host, and must not be redirected to HTTPS, refused for their Host, given a
session or routed to a school.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
PROBE_TIMEOUT_SECONDS = 2.0

_redis_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=PROBE_TIMEOUT_SECONDS,
            socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
        )
    return _redis_client


def _database_ready() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure means not ready; logged, never shown
        logger.warning("readiness: the database did not answer", exc_info=True)
        return False


def _redis_ready() -> bool:
    try:
        return bool(_redis().ping())
    except Exception:  # any failure means not ready; logged, never shown
        logger.warning("readiness: Redis did not answer", exc_info=True)
        return False


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def liveness() -> HttpResponse:
    return _no_store(JsonResponse({"status": "ok"}))


def readiness() -> HttpResponse:
    failed = [name for name, ready in (("database", _database_ready), ("redis", _redis_ready)) if not ready()]
    if failed:
        return _no_store(JsonResponse({"status": "unavailable", "failed": failed}, status=503))
    return _no_store(JsonResponse({"status": "ok"}))


class HealthMiddleware:
    """Answers GET/HEAD /healthz and /readyz before any other middleware runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            if request.path_info == LIVENESS_PATH:
                return liveness()
            if request.path_info == READINESS_PATH:
                return readiness()
        return self.get_response(request)
