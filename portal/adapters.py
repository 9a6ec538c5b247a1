from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
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


def _login(credentials: dict[str, Any]) -> str:
    """The login typed (a username or an e-mail), as allauth passes it."""
    return str(credentials.get("username") or credentials.get("email") or "")
