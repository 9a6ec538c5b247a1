"""A generic defence against NUL bytes: refused at the door with a 400, in Vietnamese.

PostgreSQL refuses NUL (U+0000) in text, so a NUL that reaches a query is a 500 wherever it
comes from: a path segment, a query parameter, a form field, a cookie. No honest browser sends
one; instead of validating it in every view, this middleware refuses the request before any
view or query runs.

The path, the query string and the cookies are checked first (before the school is resolved
from the path). Form fields are checked in process_view, when the view is known: a view that is
exempt from CSRF may install its own upload handlers before the body is parsed (the public
verification page limits the size of an upload that way), so its body is left for it to parse;
for every other POST, CsrfViewMiddleware parses the body anyway, so parsing it here costs
nothing more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

NUL = "\x00"

# Where the NUL was found, as the message names it.
_WHERE = {
    "path": gettext_lazy("the address"),
    "query": gettext_lazy("the query parameters"),
    "cookies": gettext_lazy("the cookies"),
    "form": gettext_lazy("the form fields"),
}


def _has_nul(values: Iterable[str]) -> bool:
    return any(NUL in value for value in values)


def _query_has_nul(query) -> bool:
    return _has_nul(query.keys()) or any(_has_nul(query.getlist(key)) for key in query)


def nul_refusal(request: HttpRequest, where: str) -> HttpResponse:
    """The 400 answer: JSON for the grade book's script (it asks for JSON), a page otherwise."""
    # Before LocaleMiddleware has run: the portal's default language (Vietnamese).
    with translation.override(settings.LANGUAGE_CODE):
        message = _(
            "The request was refused: a null character (NUL) was found in %(where)s. The portal does "
            "not accept it: type the value again instead of pasting it from another program."
        ) % {"where": _WHERE[where]}
        if request.path.startswith("/api/"):
            # The partner API's error shape (registry.api.errors): Vietnamese first, a code, English.
            with translation.override("en"):
                english = _(
                    "The request was refused: a null character (NUL) was found in %(where)s. The portal does "
                    "not accept it: type the value again instead of pasting it from another program."
                ) % {"where": _WHERE[where]}
            body = {"message": message, "code": "nul_character", "message_en": english}
            return JsonResponse(body, status=400)
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"error": message}, status=400)
        return HttpResponseBadRequest(render_to_string("400.html", {"message": message}, request=request))


class RefuseNulMiddleware:
    """Answer 400 to a request whose path, query string, cookies or form fields contain NUL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path_info or NUL in request.path:
            return nul_refusal(request, "path")
        if _query_has_nul(request.GET):
            return nul_refusal(request, "query")
        if _has_nul(request.COOKIES.keys()) or _has_nul(request.COOKIES.values()):
            return nul_refusal(request, "cookies")
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "csrf_exempt", False):
            return None
        files = request.FILES
        names = (upload.name or "" for key in files for upload in files.getlist(key))
        if _query_has_nul(request.POST) or _has_nul(names):
            return nul_refusal(request, "form")
        return None


# --- Behind the province's reverse proxy ------------------------------------------------------


def trusted_networks(values: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """HOCBA_TRUSTED_PROXIES (addresses or CIDRs) as networks; a bad entry stops the start."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"HOCBA_TRUSTED_PROXIES: {value!r} is not an address or a network."
            ) from exc
    return tuple(networks)


def _parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One X-Forwarded-For entry: an address, perhaps with a port (1.2.3.4:5678, [2001:db8::1]:80)."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxyMiddleware:
    """The client's address and scheme, from the proxy's headers only when the proxy is trusted.

    With REMOTE_ADDR in HOCBA_TRUSTED_PROXIES, REMOTE_ADDR becomes the rightmost X-Forwarded-For
    entry that is not itself a trusted proxy (the entries to its left were written by the client,
    who can write anything there), and X-Forwarded-Proto (the nearest proxy's, the rightmost
    value) is kept for SECURE_PROXY_SSL_HEADER. From any other address both headers are removed:
    a client cannot choose its login lock-out bucket, its verification rate limit, or make a
    plain-HTTP request look secure. A malformed header is ignored (REMOTE_ADDR stays the proxy's),
    never an error. Placed first in MIDDLEWARE, so that everything after it sees the client.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.trusted = trusted_networks(getattr(settings, "HOCBA_TRUSTED_PROXIES", []))

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def _client(self, forwarded_for: str) -> str | None:
        entries = forwarded_for.split(",")
        if len(entries) > 64:  # longer than any chain of proxies: made up
            return None
        client = None
        for entry in reversed(entries):
            address = _parse_address(entry)
            if address is None:
                return None  # malformed: ignore the header
            client = address
            if not self._is_trusted(address):
                break
        return str(client) if client is not None else None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        remote = _parse_address(str(meta.get("REMOTE_ADDR", "")))
        forwarded_for = meta.pop("HTTP_X_FORWARDED_FOR", None)
        forwarded_proto = meta.pop("HTTP_X_FORWARDED_PROTO", None)
        if self._is_trusted(remote):
            meta["HOCBA_PROXY_ADDR"] = meta.get("REMOTE_ADDR", "")
            if forwarded_for:
                client = self._client(str(forwarded_for))
                if client is not None:
                    meta["REMOTE_ADDR"] = client
            if forwarded_proto:
                proto = str(forwarded_proto).split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    meta["HTTP_X_FORWARDED_PROTO"] = proto
        return self.get_response(request)


# --- Headers SecurityMiddleware does not set --------------------------------------------------

# Browser features no page of the portal uses, switched off for every page and anything it embeds
# (the TOTP enrolment shows a QR code; nothing reads the camera: the code is typed).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope",
        "hid", "magnetometer", "microphone", "midi", "payment", "serial", "usb",
        "xr-spatial-tracking",
    )
)  # fmt: skip


class PermissionsPolicyMiddleware:
    """Adds Permissions-Policy (camera, microphone, geolocation… off) to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
