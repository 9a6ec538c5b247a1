"""Routing a request to its school, and the checks every school page shares.

Schools live under /truong/<code>/. The school is resolved from the path through a cache (no
query on a warm request) and set on the connection before any view runs. We do not use
django-tenants' subfolder middleware: it queries the domain table on every URL match and clears
Django's URL caches on every request (design.md §3).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from .db import connection
from .models import CODE_PATTERN
from .permissions import access_for, can_open_school_data, requires_two_factor, school_is_visible
from .selectors import school_route_get
from .services import school_data_view_record

_SCHOOL_PATH = re.compile(r"^/" + re.escape(settings.SCHOOL_URL_PREFIX) + r"/(?P<code>[^/]+)/")
# A school's code as the model allows it (portal.models.CODE_PATTERN: letters, digits, '-', '_',
# at most 31); anything else (a NUL byte, which PostgreSQL refuses in text, 10,000 characters)
# is no school: 404 without a query.
_SCHOOL_CODE = re.compile(CODE_PATTERN)


class SchoolRouteMiddleware:
    """Set request.school and the connection's schema from the URL; public schema otherwise.

    request.tenant is also set (to the school, or django-tenants' public stand-in), because
    django-tenants' admin templates read it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        connection.set_schema_to_public()
        request.school = None  # type: ignore[attr-defined]  # added here, typed in portal.http
        request.tenant = connection.tenant  # type: ignore[attr-defined]  # added here, typed in portal.http
        match = _SCHOOL_PATH.match(request.path_info)
        if match:
            if not _SCHOOL_CODE.fullmatch(match["code"]):
                raise Http404("No such school")
            school = school_route_get(match["code"], timeout=settings.SCHOOL_ROUTE_CACHE_SECONDS)
            if school is None:
                raise Http404("No such school")
            request.school = request.tenant = school  # type: ignore[attr-defined]  # added here, typed in portal.http
            connection.set_tenant(school)
        try:
            return self.get_response(request)
        finally:
            connection.set_schema_to_public()


class SchoolAccessMiddleware:
    """Every school page: login required; another school's pages answer 404; no data grant, 403.

    Enforced here, once, so that no school view can forget it (NetBox's central enforcement).
    The `school_code` URL argument is consumed here; views use request.school.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        school = getattr(request, "school", None)
        if school is None:
            return None
        view_kwargs.pop("school_code", None)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not school_is_visible(request.user, school):
            raise Http404("No such school")
        if not can_open_school_data(request.user, school):
            raise PermissionDenied("No data access")
        if not access_for(request.user).roles_in_school(school.pk):
            # A supervisor (department or division staff) reading a school under a data grant:
            # every page they open is logged (domain.md §2).
            school_data_view_record(user=request.user, school=school, path=request.get_full_path())
        return None


class RequireTwoFactorMiddleware:
    """Whoever must log in with a second factor (permissions.requires_two_factor: those who grant
    roles, sign, or read named students' data beyond one class) sets up TOTP before anything else.

    Until then only the two-factor pages, confirming the password again (which setting up TOTP
    may ask for), logging out and the static files answer; every other page, the account's other
    pages included, sends them to set up TOTP.
    """

    ALLOWED_PREFIXES = (
        "/accounts/2fa/",
        "/accounts/reauthenticate/",
        "/accounts/logout/",
        "/accounts/login/",
        "/i18n/",
        "/static/",
        "/favicon",
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path_info.startswith(self.ALLOWED_PREFIXES)
            and requires_two_factor(user)
            and not _has_totp(request)
        ):
            # Encoded, so that the page's own query comes back whole after enrolment.
            back = quote(request.get_full_path(), safe="/")
            return redirect(reverse("mfa_activate_totp") + "?next=" + back)
        return self.get_response(request)


_TOTP_SESSION_KEY = "hocba_has_totp"


def _has_totp(request: HttpRequest) -> bool:
    """Has the user a TOTP authenticator? Asked of the database until it has, then remembered in
    the session (no query on every page); forgotten when the user removes it (the signal below).
    An administrator's reset (portal.accounts.user_two_factor_reset) applies from the next login."""
    from allauth.mfa.models import Authenticator

    user = request.user
    if request.session.get(_TOTP_SESSION_KEY) == user.pk:
        return True
    found = Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()
    if found:
        request.session[_TOTP_SESSION_KEY] = user.pk
    return found


def _forget_totp(sender, request=None, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(_TOTP_SESSION_KEY, None)


def _connect_signals() -> None:
    from allauth.mfa.signals import authenticator_removed

    authenticator_removed.connect(_forget_totp, dispatch_uid="portal.middleware.forget_totp")


_connect_signals()
