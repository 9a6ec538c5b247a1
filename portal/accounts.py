"""Writes to a person's account: names, e-mail, active flag, password, second factor.

Each asks portal.permissions.can_manage_account first, the delegation rule: only whoever could
grant every role an account holds may change it (issue 9, finding 4). Each change is audited.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from .choices import AuditAction
from .models import User
from .permissions import can_manage_account
from .services import audit_record, user_changes_record

ACCOUNT_FIELDS = ("username", "full_name", "email", "is_active")


def _check(actor: User, user: User) -> None:
    decision = can_manage_account(actor, user)
    if not decision:
        raise PermissionDenied(decision.reason)


@transaction.atomic
def user_update(*, actor: User, user: User, **fields: Any) -> User:
    """Change an account's username, names, e-mail or active flag; audited (old and new)."""
    _check(actor, user)
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in fields.items():
        if name not in ACCOUNT_FIELDS:
            raise ValueError(f"user_update cannot change {name!r}")
        old = getattr(locked, name)
        if old != value:
            changed[name] = (old, value)
            setattr(locked, name, value)
    if not changed:
        return locked
    locked.full_clean(exclude=["password"])
    locked.save(update_fields=list(changed))
    user_changes_record(actor=actor, user=locked, changed=changed)
    return locked


@transaction.atomic
def user_password_set(*, actor: User, user: User, password: str) -> None:
    """Set an account's password (the form has validated it); audited without the password."""
    _check(actor, user)
    locked = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    locked.set_password(password)
    locked.save(update_fields=["password"])
    user_changes_record(actor=actor, user=locked, changed={"password": ("***", "***")})


@transaction.atomic
def user_two_factor_reset(*, actor: User, user: User) -> int:
    """Remove an account's second factor (a lost phone): it sets up a new one at its next login.

    Returns how many authenticators (TOTP, recovery codes) were removed; audited when any."""
    from allauth.mfa.models import Authenticator

    _check(actor, user)
    User.objects.select_for_update(no_key=True).filter(pk=user.pk).first()
    authenticators = Authenticator.objects.filter(user=user)
    kinds = sorted(authenticators.values_list("type", flat=True))
    if not kinds:
        return 0
    removed, _by_model = authenticators.delete()
    audit_record(
        actor=actor,
        action=AuditAction.USER_CHANGED,
        obj=user,
        summary=_("Account %(username)s: second factor removed") % {"username": user.username},
        changes={"two_factor": {"old": kinds, "new": []}},
    )
    return removed
