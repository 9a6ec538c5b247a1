from __future__ import annotations

import time
from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter

# Internal to allauth (held to 65.x in pyproject.toml): the session's record of how the user signed in.
from allauth.account.internal.flows.login import get_authentication_records
from django import forms
from django.utils.translation import gettext_lazy as _

from . import lockout


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are created by operators and school administrators; there is no self sign-up.

    Wrong passwords are counted per account with back-off, and per address under a ceiling a
    school's NAT does not reach (portal.lockout), instead of allauth's "login_failed" limit,
    which is left to the two-factor codes (settings.ACCOUNT_RATE_LIMITS).
    """

    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # Two-factor codes (allauth.mfa's own limit): say what to do, in Vietnamese.
        "too_many_login_attempts": _(
            "Too many wrong codes. Wait five minutes and try again with the code your "
            "authenticator app shows now; if your phone is lost, ask whoever manages your account."
        ),
    }

    def is_open_for_signup(self, request) -> bool:
        return False

    def pre_authenticate(self, request, **credentials: Any) -> None:
        # Replaces allauth's check (which counts by address alone as well as by login).
        lock = lockout.login_lock_find(login=_login(credentials), address=self.get_client_ip(request) or "")
        if lock is not None:
            raise forms.ValidationError(lock.message, code="login_locked")

    def authenticate(self, request, **credentials: Any):
        user = super().authenticate(request, **credentials)
        if user is not None:
            lockout.login_success_record(user=user)
        return user

    def authentication_failed(self, request, **credentials: Any) -> None:
        lockout.login_failure_record(login=_login(credentials), address=self.get_client_ip(request) or "")

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        """Setting up the second factor right after signing in with the password does not ask for
        the password again (issue 14: a principal met the password page twice in a row).

        allauth counts only a re-entry as recent; a sign-in with the password within the same
        window (ACCOUNT_REAUTHENTICATION_TIMEOUT) proves as much. This holds only while the user
        has no authenticator yet (the enrolment RequireTwoFactorMiddleware sends them to):
        changing or removing an existing second factor still asks.
        """
        required = super().is_reauthentication_required(app=app, **kwargs)
        request = getattr(self, "request", None)
        if not required or app != "allauth.mfa" or request is None or not request.user.is_authenticated:
            return required
        from allauth.mfa.models import Authenticator

        if Authenticator.objects.filter(user_id=request.user.pk).exists():
            return True
        records = [
            r for r in get_authentication_records(request, request.user) if r.get("method") == "password"
        ]
        return not (records and time.time() - records[-1]["at"] < account_settings.REAUTHENTICATION_TIMEOUT)


def _login(credentials: dict[str, Any]) -> str:
    """The login typed (a username or an e-mail), as allauth passes it."""
    return str(credentials.get("username") or credentials.get("email") or "")
