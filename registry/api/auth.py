"""Who calls and what they may ask: API keys, scopes, purposes, and the throttle per client.

- PartnerKeyAuthentication: `Authorization: Bearer hbk_<prefix>_<secret>`; an unknown, malformed,
  revoked or expired key, or the key of an inactive client, is a 401 (invalid_key).
- HasScope: the view's `required_scope` among the client's scopes, else 403 (scope_missing).
- HasPurpose: the call's purpose (header X-Purpose, or ?purpose=) among the client's allowed
  purposes, else 403 (purpose_not_allowed); none given is a 400 (purpose_required).
- ClientRateThrottle: the client's own rate (PartnerClient.throttle_rate), counted in the default
  cache (Redis) under the client's id, so that every key of a client shares one budget.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from ..models_api import PartnerClient, PartnerKey
from .choices import Purpose
from .errors import ApiError
from .selectors import key_prefix_of, partner_key_find

PURPOSE_HEADER = "X-Purpose"


def _invalid_key() -> ApiError:
    return ApiError(
        "invalid_key",
        _("The API key is not valid, has expired or has been revoked."),
        status_code=401,
        **{"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
    )


def bearer_of(request: Request) -> str:
    """The raw key of `Authorization: Bearer <key>` ('' when there is no such header)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


class PartnerKeyAuthentication(BaseAuthentication):
    """request.user is the PartnerClient, request.auth its PartnerKey."""

    def authenticate(self, request: Request) -> tuple[PartnerClient, PartnerKey] | None:
        raw = bearer_of(request)
        request._api_key_prefix = key_prefix_of(raw)  # for the call log, even when refused
        if not request.META.get("HTTP_AUTHORIZATION"):
            return None  # NotAuthenticated: 401 key_required
        key = partner_key_find(raw)
        if key is not None:
            # Logged with the call even when refused: who still uses a revoked or expired key.
            request._api_key_client = key.client
        if key is None or not key.usable_at(timezone.now()) or not key.client.active:
            raise _invalid_key()
        return key.client, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasScope(BasePermission):
    """The view's `required_scope` is one of the client's scopes."""

    def has_permission(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, PartnerClient):
            return False
        if view.required_scope not in client.scopes:
            raise ApiError(
                "scope_missing",
                _("This client does not hold the scope this call needs (%(scope)s).")
                % {"scope": view.required_scope},
                status_code=403,
            )
        return True


def purpose_of(request: Request) -> str:
    """The purpose the call names: the X-Purpose header, else the `purpose` query parameter."""
    value = request.headers.get(PURPOSE_HEADER) or request.query_params.get("purpose") or ""
    return value.strip()[:32]


class HasPurpose(BasePermission):
    """The call names a purpose, and the client is allowed it."""

    def has_permission(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, PartnerClient):
            return False
        purpose = purpose_of(request)
        if not purpose:
            raise ApiError(
                "purpose_required",
                _("Name the purpose of the call in the X-Purpose header (docs/api.md lists them)."),
                status_code=400,
            )
        if purpose not in Purpose.values or purpose not in client.purposes:
            raise ApiError(
                "purpose_not_allowed", _("This client is not allowed this purpose."), status_code=403
            )
        return True


class ClientRateThrottle(SimpleRateThrottle):
    """The client's own rate, one budget for all its keys, counted in Redis (the default cache)."""

    scope = "partner"

    def __init__(self) -> None:  # the rate is the client's, known only with the request
        self.rate: str | None = None
        self.num_requests = self.duration = None

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.user
        if not isinstance(client, PartnerClient):
            return True  # refused by authentication anyway
        self.rate = client.throttle_rate
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        client = request.user
        return f"api-throttle:{client.pk}" if isinstance(client, PartnerClient) else None
