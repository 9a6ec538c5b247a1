"""The portal's answer to a form refused for its CSRF token (settings.CSRF_FAILURE_VIEW).

Django's own page is English and technical ("Forbidden (403) CSRF verification failed"), with no
way on. Most often a teacher's page stayed open past the session, or the browser was told to
refuse cookies; the page says so in Vietnamese, and how to go on: reload and try again.
"""

from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """403 with templates/403_csrf.html; `reason` (Django's, English, for developers) is not shown."""
    page = render_to_string("403_csrf.html", {"back": _same_site_referer(request)}, request=request)
    return HttpResponse(page, status=403)


def _same_site_referer(request: HttpRequest) -> str:
    """The page the form came from, when it is one of ours (a path), to reload; "" otherwise."""
    referer = request.META.get("HTTP_REFERER", "")
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""
    allowed = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={host}, require_https=request.is_secure()
    )
    return referer if referer and allowed else ""
