"""Reads of the public schema, scoped to the acting user (style.md rule 2).

Everything a user lists goes through one of these; what is outside the scope is not there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TypedDict

from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from .choices import ROLE_SCOPE, TEACHER_ROLES, ScopeKind
from .db import connection
from .index import personal_id_digest as personal_id_digest  # the face of portal.index
from .index import verification_code_matches as verification_code_matches
from .models import AuditEntry, Division, RoleAssignment, School, User
from .permissions import access_for


def divisions_for(user: User) -> QuerySet[Division]:
    access = access_for(user)
    if access.is_department_staff:
        return Division.objects.all()
    return Division.objects.filter(pk__in=access.division_ids)


def schools_for(user: User) -> QuerySet[School]:
    """Schools the user may see (not necessarily open): see permissions.school_is_visible."""
    access = access_for(user)
    qs = School.objects.select_related("division")
    if access.is_department_staff:
        return qs
    return qs.filter(Q(pk__in=list(access.school_roles)) | Q(division_id__in=access.division_ids))


def _assignment_scope_q(user: User) -> Q | None:
    """The assignments inside the user's scope, as a filter; None means everything."""
    access = access_for(user)
    if access.is_department_staff:
        return None
    schools = set(access.school_roles)
    return (
        Q(school_id__in=schools)
        | Q(school__division_id__in=access.division_ids)
        | Q(division_id__in=access.division_ids)
    )


def role_assignments_for(user: User) -> QuerySet[RoleAssignment]:
    qs = RoleAssignment.objects.select_related("user", "division", "school", "granted_by", "revoked_by")
    scope = _assignment_scope_q(user)
    return qs if scope is None else qs.filter(scope)


def users_for(user: User) -> QuerySet[User]:
    """Users who hold (or held) a role inside the user's scope, and the user themself."""
    scope = _assignment_scope_q(user)
    if scope is None:
        return User.objects.all()
    inside = RoleAssignment.objects.filter(scope).values("user_id")
    return User.objects.filter(Q(pk__in=inside) | Q(pk=user.pk))


def user_by_login(login: str) -> User | None:
    """The active account with exactly this username or email (case-insensitive), if any."""
    if not login:
        return None
    return (
        User.objects.filter(is_active=True).filter(Q(username__iexact=login) | Q(email__iexact=login)).first()
    )


def user_is_within_scope(actor: User, target: User) -> bool:
    """Is every role the target holds inside the actor's scope? Only then may the actor edit them.

    A school administrator must not reset the password of a department administrator who also
    teaches in the school.
    """
    if access_for(actor).is_department_admin:
        return True
    if target.pk == actor.pk:
        return False
    scope = _assignment_scope_q(actor)
    assert scope is not None  # department staff returned above or see everything read-only
    held = RoleAssignment.objects.current().filter(user=target)
    return held.exists() and not held.exclude(scope).exists()


def audit_entries_for(user: User) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.select_related("actor", "school", "division")
    access = access_for(user)
    if access.is_department_staff:
        return qs
    return qs.filter(
        Q(school_id__in=list(access.school_roles))
        | Q(school__division_id__in=access.division_ids)
        | Q(division_id__in=access.division_ids)
    )


class Workplace(TypedDict):
    """A place where a user holds roles: the department (place None), a division or a school."""

    kind: str  # a ScopeKind
    place: Division | School | None
    roles: list[str]  # their labels
    # The last day the roles held there last (a contract, a semester); None when one has no end.
    until: dt.date | None


def workplaces_for(user: User) -> list[Workplace]:
    """Where the user has roles, grouped by place, for the landing page."""
    places: dict[tuple[str, int | None], Workplace] = {}
    for a in (
        RoleAssignment.objects.current()
        .filter(user=user)
        .select_related("division", "school", "school__division")
        .order_by("role")
    ):
        scope = ROLE_SCOPE[a.role]
        if scope == ScopeKind.DEPARTMENT:
            key: tuple[str, int | None] = (ScopeKind.DEPARTMENT, None)
            place: Division | School | None = None
        elif scope == ScopeKind.DIVISION:
            key, place = (ScopeKind.DIVISION, a.division_id), a.division
        else:
            key, place = (ScopeKind.SCHOOL, a.school_id), a.school
        entry = places.setdefault(key, {"kind": key[0], "place": place, "roles": [], "until": a.valid_until})
        entry["roles"].append(a.get_role_display())
        entry["until"] = _later(entry["until"], a.valid_until)
    order: dict[str, int] = {ScopeKind.DEPARTMENT: 0, ScopeKind.DIVISION: 1, ScopeKind.SCHOOL: 2}
    return sorted(places.values(), key=lambda p: (order[p["kind"]], str(p["place"] or "")))


def _later(first: dt.date | None, second: dt.date | None) -> dt.date | None:
    """The later of two end dates, where None (no end) is later than any date."""
    if first is None or second is None:
        return None
    return max(first, second)


# --- Memberships that end (visiting and contract teachers, issue 14) ---------------------------


def membership_end(*, user: User, school: School, roles: Iterable[str] | None = None) -> dt.date | None:
    """The last day the user's current roles in the school (those among `roles`, or all) last:
    the latest of their end dates; None when one of them has no end date, or none is held (the
    callers have asked whether the user may act first)."""
    held = RoleAssignment.objects.current().filter(user_id=user.pk, school_id=school.pk)
    if roles is not None:
        held = held.filter(role__in=list(roles))
    ends = list(held.values_list("valid_until", flat=True))
    if not ends or None in ends:
        return None
    return max(d for d in ends if d is not None)


def memberships_until(*, user: User, roles: Iterable[str]) -> list[tuple[School, dt.date]]:
    """The schools where the user's current roles among `roles` all have an end date, each with
    the last of them (one query): where a visiting or contract teacher's rights run out."""
    ends: dict[int, tuple[School, dt.date | None]] = {}
    for a in (
        RoleAssignment.objects.current()
        .filter(user_id=user.pk, school__isnull=False, role__in=list(roles))
        .select_related("school")
    ):
        school = a.school
        assert school is not None  # filtered on it
        previous = ends.get(school.pk)
        until = a.valid_until if previous is None else _later(previous[1], a.valid_until)
        ends[school.pk] = (school, until)
    found = [(school, until) for school, until in ends.values() if until is not None]
    return sorted(found, key=lambda pair: (pair[1], pair[0].name))


def school_teacher_is_current(*, user: User, school: School, roles: Iterable[str] = TEACHER_ROLES) -> bool:
    """Does the user hold one of `roles` (a teacher's, by default) in the school now? Locks the
    rows found (call it inside the writing transaction): a revocation waits for the write."""
    return (
        RoleAssignment.objects.current()
        .select_for_update(no_key=True)
        .filter(user_id=user.pk, school_id=school.pk, role__in=list(roles))
        .exists()
    )


def school_teachers_current(school: School) -> list[User]:
    """The people who hold a teacher's role in the school now, by name (one query)."""
    return list(
        User.objects.filter(
            pk__in=RoleAssignment.objects.current()
            .filter(school_id=school.pk, role__in=list(TEACHER_ROLES))
            .values("user_id")
        ).order_by("full_name", "username")
    )


class EndingMembership(TypedDict):
    user: User
    until: dt.date  # the last day of their teacher roles here
    ended: bool  # already over (today is past `until`)


def school_memberships_ending(
    *, school: School, today: dt.date | None = None, within_days: int = 30
) -> list[EndingMembership]:
    """The school's teachers whose teacher roles have all ended, or all end within `within_days`
    (one query): each with the last day of those roles, the ended ones first, by that day.

    A role's last day is its end date, or the day before it was revoked when that came first.
    """
    today = today or timezone.localdate()
    people: dict[int, EndingMembership] = {}
    open_ended: set[int] = set()
    for a in (
        RoleAssignment.objects.filter(school_id=school.pk, role__in=list(TEACHER_ROLES))
        .select_related("user")
        .order_by("user_id")
    ):
        last = a.valid_until
        if a.revoked_at is not None:
            revoked_day = timezone.localdate(a.revoked_at) - dt.timedelta(days=1)
            last = revoked_day if last is None else min(last, revoked_day)
        if last is None:
            open_ended.add(a.user_id)
            continue
        entry = people.get(a.user_id)
        if entry is None or last > entry["until"]:
            people[a.user_id] = {"user": a.user, "until": last, "ended": last < today}
    horizon = today + dt.timedelta(days=within_days)
    ending = [e for uid, e in people.items() if uid not in open_ended and e["until"] <= horizon]
    return sorted(ending, key=lambda e: (not e["ended"], e["until"], e["user"].get_full_name()))


# --- School routing --------------------------------------------------------------------------

ROUTE_CACHE_PREFIX = "school-route:"
_MISSING = "-"


def school_route_get(code: str, *, timeout: int) -> School | None:
    """The school for a URL code, from the cache when warm (no query), else from the database.

    The cached value is the handful of fields a request needs; the instance is rebuilt from
    them, so views must not save it (services load their own row under a lock).
    """
    key = ROUTE_CACHE_PREFIX + code.lower()
    cached = cache.get(key)
    if cached == _MISSING:
        return None
    if cached is None:
        row = (
            School.objects.filter(code__iexact=code)
            .values("id", "schema_name", "code", "name", "division_id", "active", "levels")
            .first()
        )
        cache.set(key, row or _MISSING, timeout)
        if row is None:
            return None
        cached = row
    school = School(**cached)
    school._state.adding = False
    return school


def school_route_forget(code: str) -> None:
    cache.delete(ROUTE_CACHE_PREFIX + code.lower())


class StaffMember(TypedDict):
    user: User
    roles: list[str]  # their labels
    until: dt.date | None  # the last day of their roles here (a contract); None: no end


def school_staff(school: School) -> list[StaffMember]:
    """The people holding roles in a school, each with their roles, for the school's leaders."""
    people: dict[int, StaffMember] = {}
    for a in (
        RoleAssignment.objects.current()
        .filter(school_id=school.pk)
        .select_related("user")
        .order_by("user__full_name", "role")
    ):
        entry = people.setdefault(a.user_id, {"user": a.user, "roles": [], "until": a.valid_until})
        entry["roles"].append(a.get_role_display())
        entry["until"] = _later(entry["until"], a.valid_until)
    return list(people.values())


def connection_schema_name() -> str:
    """The schema this process's database connection is on: a school's, or "public"."""
    return connection.schema_name
