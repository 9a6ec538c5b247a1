"""The partner API's errors: JSON, the Vietnamese message first, a stable code, the English after.

    {"message": "Khoá API không hợp lệ …", "code": "invalid_key", "message_en": "The API key …"}

Every refusal the API makes is an ApiError (a code, a status, a translatable message); DRF's own
exceptions (malformed JSON, wrong method, throttled …) are mapped to codes of ours here, so that
every answer, whatever refused it, has the same shape (docs/api.md lists the codes).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response


class ApiError(exceptions.APIException):
    """A refusal of the API: `code` (stable, for programs), `message` (for people), the status."""

    def __init__(self, code: str, message: Promise | str, status_code: int = 400, **headers: str) -> None:
        super().__init__(detail=str(message), code=code)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.headers = headers


# DRF's exceptions, answered in our words.
_DRF = [
    (
        exceptions.NotAuthenticated,
        "key_required",
        _("An API key is required: send it as “Authorization: Bearer <key>”."),
    ),
    (
        exceptions.AuthenticationFailed,
        "invalid_key",
        _("The API key is not valid, has expired or has been revoked."),
    ),
    (exceptions.PermissionDenied, "forbidden", _("This API key may not make this call.")),
    (exceptions.NotFound, "not_found", _("Nothing was found at this address.")),
    (exceptions.MethodNotAllowed, "method_not_allowed", _("This method is not allowed at this address.")),
    (
        exceptions.NotAcceptable,
        "not_acceptable",
        _("The format asked for in the Accept header cannot be served."),
    ),
    (
        exceptions.UnsupportedMediaType,
        "unsupported_media_type",
        _("The request's content type is not accepted here."),
    ),
    (exceptions.ParseError, "malformed_request", _("The request's body could not be read.")),
    (exceptions.ValidationError, "invalid_input", _("Some values of the request are not valid.")),
]


def error_body(code: str, message: Promise | str, **extra: Any) -> dict[str, Any]:
    """The JSON of an error: the message in Vietnamese first, the code, the message in English."""
    with translation.override("vi"):
        vietnamese = str(message)
    with translation.override("en"):
        english = str(message)
    return {"message": vietnamese, "code": code, "message_en": english, **extra}


def error_response(code: str, message: Promise | str, status_code: int, **extra: Any) -> Response:
    return Response(error_body(code, message, **extra), status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every exception of an API view as our JSON error.

    Anything not listed here is a bug and is left to Django (a 500, logged): the tests and the
    schema fuzzing look for those.
    """
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, ApiError):
        code, message, status_code, headers = exc.code, exc.message, exc.status_code, dict(exc.headers)
    elif isinstance(exc, exceptions.Throttled):
        code, message, status_code = (
            "throttled",
            _("Too many calls from this client: wait before calling again (see Retry-After)."),
            status.HTTP_429_TOO_MANY_REQUESTS,
        )
        wait = exc.wait if exc.wait is not None else 1
        headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    elif isinstance(exc, RequestDataTooBig):
        code, message, status_code = (
            "too_large",
            _("The request is too large."),
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, Http404):
        code, message, status_code = "not_found", _("Nothing was found at this address."), 404
    else:
        known = next(((code, message) for kind, code, message in _DRF if isinstance(exc, kind)), None)
        if known is None:
            return None
        code, message = known
        status_code = getattr(exc, "status_code", 400)
        if isinstance(exc, exceptions.ValidationError):
            extra["errors"] = exc.detail
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status_code = status.HTTP_401_UNAUTHORIZED
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
    request = context.get("request")
    if request is not None:
        request._api_error_code = code  # for the call log (registry.api.views.PartnerView)
    return Response(error_body(code, message, **extra), status=status_code, headers=headers or None)
