"""Login lock-out: per account with back-off, and a per-address ceiling a school's NAT never hits.

A school's teachers share one address, so counting wrong passwords by address alone locks a whole
school out when one teacher mistypes (issue 9, finding 6). Instead:

- an account is locked after HOCBA_LOGIN_ACCOUNT_FAILURES wrong passwords in a row, for
  HOCBA_LOGIN_LOCK_SECONDS, doubling with each further lock within a day, up to
  HOCBA_LOGIN_LOCK_MAX_SECONDS; a successful login forgets its failures and its back-off;
- an address is refused once it has sent HOCBA_LOGIN_ADDRESS_FAILURES wrong passwords within a
  window of HOCBA_LOGIN_ADDRESS_WINDOW_SECONDS (a guesser spraying many accounts); a successful
  login does not reset it (a guesser could log into an account of its own between guesses);
- the department's operators unlock an account from the admin (portal.admin), audited.

Counters live in Redis (the default cache): atomic increments with an expiry, nothing to clean up.
A login that names no account is counted under the login it names, so an unknown name and a real
one behave alike. Why not django-axes: one failure limit for every lock-out parameter (5 per
account and 300 per address cannot both be had) and no back-off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from .choices import AuditAction
from .models import User
from .permissions import can_unlock_logins
from .selectors import user_by_login
from .services import audit_record

_PREFIX = "login-lock"
# Failures and back-off levels are remembered this long after the last one.
_MEMORY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LoginLock:
    """A refusal to even check a password: until when, and whether the address is the cause."""

    until: dt.datetime
    by_address: bool

    @property
    def message(self) -> str:
        local = timezone.localtime(self.until)
        minutes = max(1, int((self.until - timezone.now()).total_seconds() + 59) // 60)
        values = {"time": formats.time_format(local, "H:i"), "minutes": minutes}
        if self.by_address:
            return (
                _(
                    "Too many wrong passwords have come from this network. Logins from it are "
                    "paused until %(time)s (about %(minutes)s minutes). If this keeps happening, "
                    "tell the Department of Education's operators."
                )
                % values
            )
        return (
            _(
                "This account is locked for a while because its password was entered wrongly "
                "too many times. Try again after %(time)s (about %(minutes)s minutes), or ask "
                "the Department of Education's operators to unlock it."
            )
            % values
        )


def _account_id(login: str) -> str:
    """The account a login names (by username or e-mail), or the login itself when none."""
    user = user_by_login(login.strip())
    if user is not None:
        return f"user:{user.pk}"
    digest = hashlib.sha256(login.strip().lower().encode()).hexdigest()[:32]
    return f"login:{digest}"


def _account_keys(account_id: str) -> tuple[str, str, str]:
    base = f"{_PREFIX}:account:{account_id}"
    return f"{base}:failures", f"{base}:level", f"{base}:until"


def _address_key(address: str, now: float) -> tuple[str, float]:
    window = settings.HOCBA_LOGIN_ADDRESS_WINDOW_SECONDS
    start = now - now % window
    return f"{_PREFIX}:address:{address}:{int(start)}", start + window


def _incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 0, timeout)
        return cache.incr(key)


def login_lock_find(*, login: str, address: str) -> LoginLock | None:
    """The lock that refuses this login attempt before its password is checked, if any."""
    now = timezone.now()
    _failures, _level, until_key = _account_keys(_account_id(login))
    until = cache.get(until_key)
    if until is not None and until > now.timestamp():
        return LoginLock(until=dt.datetime.fromtimestamp(until, tz=dt.UTC), by_address=False)
    if address:
        key, window_end = _address_key(address, now.timestamp())
        if (cache.get(key) or 0) >= settings.HOCBA_LOGIN_ADDRESS_FAILURES:
            return LoginLock(until=dt.datetime.fromtimestamp(window_end, tz=dt.UTC), by_address=True)
    return None


def login_failure_record(*, login: str, address: str) -> LoginLock | None:
    """Count a wrong password for the account and the address; the lock it starts, if any."""
    now = timezone.now().timestamp()
    if address:
        key, _end = _address_key(address, now)
        _incr(key, settings.HOCBA_LOGIN_ADDRESS_WINDOW_SECONDS)
    failures_key, level_key, until_key = _account_keys(_account_id(login))
    if _incr(failures_key, _MEMORY_SECONDS) < settings.HOCBA_LOGIN_ACCOUNT_FAILURES:
        return None
    level = _incr(level_key, _MEMORY_SECONDS)
    seconds = min(settings.HOCBA_LOGIN_LOCK_SECONDS * 2 ** (level - 1), settings.HOCBA_LOGIN_LOCK_MAX_SECONDS)
    cache.set(until_key, now + seconds, seconds)
    cache.delete(failures_key)
    return LoginLock(until=dt.datetime.fromtimestamp(now + seconds, tz=dt.UTC), by_address=False)


def login_success_record(*, user: User) -> None:
    """A successful login forgets the account's failures, lock and back-off."""
    cache.delete_many(_account_keys(f"user:{user.pk}"))


def login_locked_until(user: User) -> dt.datetime | None:
    """Until when the account is locked (for the admin), or None."""
    until = cache.get(_account_keys(f"user:{user.pk}")[2])
    if until is None or until <= timezone.now().timestamp():
        return None
    return dt.datetime.fromtimestamp(until, tz=dt.UTC)


@transaction.atomic
def login_unlock(*, actor: User, user: User) -> bool:
    """Lift an account's lock-out and forget its back-off (operators, from the admin); audited.

    Returns False when the account was not locked (nothing is recorded then)."""
    if not can_unlock_logins(actor):
        raise PermissionDenied(_("Only the Department of Education's operators unlock accounts."))
    until = login_locked_until(user)
    if until is None:
        return False
    audit_record(
        actor=actor,
        action=AuditAction.USER_CHANGED,
        obj=user,
        summary=_("Account %(username)s unlocked after wrong passwords") % {"username": user.username},
        changes={"login_locked_until": {"old": until.isoformat(), "new": None}},
    )
    # The audit row is written first: if it fails, the lock stays.
    cache.delete_many(_account_keys(f"user:{user.pk}"))
    return True
