"""Typed requests: what the middleware attaches, said once (style.md rule 3).

Views annotate `request` with these instead of `HttpRequest`, so the type checker knows that a
school page has `request.school` and a logged-in user, and nobody has to guess.
"""

from __future__ import annotations

from django.http import HttpRequest

from .models import School, User


class AuthenticatedRequest(HttpRequest):
    """A request from a logged-in user (login_required, or a school page)."""

    user: User  # type: ignore[assignment]  # narrower than HttpRequest's User | AnonymousUser


class SchoolRequest(AuthenticatedRequest):
    """A request to a school page (/truong/<code>/...), let in by portal.middleware: the user is
    logged in and may open this school; `school` and `tenant` are that school."""

    school: School
    tenant: School
