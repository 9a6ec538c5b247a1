"""Writes to the public schema: role grants and revocations, users, schools, the audit log.

Every write checks its permission, runs in a transaction and writes an audit row in the same
transaction (style.md rules 10 and 11).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import AuditAction, IssuedRecordStatus
from .db import connection
from .formats import date_vi
from .index import personal_id_digest, verification_code_new
from .models import AuditEntry, Division, IssuedRecord, RoleAssignment, School, User
from .permissions import can_grant, can_revoke, forget_access
from .selectors import school_route_forget


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: Any,
    summary: str,
    changes: dict[str, Any] | None = None,
    school: School | None = None,
    division: Division | None = None,
) -> AuditEntry:
    """Append one audit row. Call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        summary=summary[:300],
        changes=changes or {},
        school=school,
        division=division,
    )


def audit_records(entries: list[dict[str, Any]]) -> list[AuditEntry]:
    """Append many audit rows at once (one INSERT): each entry takes audit_record's arguments.
    Call it inside the transaction of the changes it records."""
    return AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                actor=e.get("actor"),
                action=e["action"],
                object_type=e["obj"]._meta.label_lower,
                object_id=str(e["obj"].pk),
                summary=e["summary"][:300],
                changes=e.get("changes") or {},
                school=e.get("school"),
                division=e.get("division"),
            )
            for e in entries
        ]
    )


def _assignment_snapshot(a: RoleAssignment) -> dict[str, Any]:
    return {
        "user": a.user.username,
        "role": a.role,
        "division": a.division.code if a.division else None,
        "school": a.school.code if a.school else None,
        "is_manager": a.is_manager,
        "data_access": a.data_access,
        "valid_until": a.valid_until.isoformat() if a.valid_until else None,
    }


def _assignment_audit(*, actor: User | None, assignment: RoleAssignment, action: str, summary: str) -> None:
    """The audit row of a grant, revocation or expiry: the assignment's state, in its scope."""
    school = assignment.school
    audit_record(
        actor=actor,
        action=action,
        obj=assignment,
        summary=summary
        % {
            "actor": actor,
            "role": assignment.get_role_display(),
            "user": assignment.user,
            "scope": assignment.scope_label,
            "date": date_vi(assignment.valid_until),
        },
        changes={"old" if action != AuditAction.ROLE_GRANTED else "new": _assignment_snapshot(assignment)},
        school=school,
        division=assignment.division or (school.division if school else None),
    )


@transaction.atomic
def role_assignment_grant(
    *,
    actor: User,
    user: User,
    role: str,
    division: Division | None = None,
    school: School | None = None,
    is_manager: bool = False,
    data_access: bool = False,
    valid_until: dt.date | None = None,
) -> RoleAssignment:
    """Grant a role, if the delegation rule allows it; audited. Refusals raise PermissionDenied."""
    decision = can_grant(
        actor,
        grantee=user,
        role=role,
        division=division,
        school=school,
        is_manager=is_manager,
        data_access=data_access,
    )
    if not decision:
        raise PermissionDenied(decision.reason)
    if valid_until is not None and valid_until < timezone.localdate():
        raise ValidationError({"valid_until": _("The end date is in the past.")})
    # Lock the grantee so two concurrent grants of the same role cannot both pass the check.
    User.objects.select_for_update(no_key=True).filter(pk=user.pk).first()
    existing = RoleAssignment.objects.filter(
        user=user, role=role, division=division, school=school, revoked_at__isnull=True
    ).first()
    if existing is not None:
        raise ValidationError(_("This user already holds this role here."))
    assignment = RoleAssignment(
        user=user,
        role=role,
        division=division,
        school=school,
        is_manager=is_manager,
        data_access=data_access,
        valid_until=valid_until,
        granted_by=actor,
    )
    assignment.full_clean()
    assignment.save()
    _assignment_audit(
        actor=actor,
        assignment=assignment,
        action=AuditAction.ROLE_GRANTED,
        summary=_("%(actor)s granted %(role)s to %(user)s (%(scope)s)"),
    )
    forget_access(user)
    return assignment


@transaction.atomic
def role_assignment_revoke(*, actor: User, assignment: RoleAssignment) -> RoleAssignment:
    """Revoke a role (the row stays, for the record); audited."""
    assignment = (
        RoleAssignment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("user", "division", "school")
        .get(pk=assignment.pk)
    )
    decision = can_revoke(actor, assignment)
    if not decision:
        raise PermissionDenied(decision.reason)
    assignment.revoked_at = timezone.now()
    assignment.revoked_by = actor
    assignment.save(update_fields=["revoked_at", "revoked_by"])
    _assignment_audit(
        actor=actor,
        assignment=assignment,
        action=AuditAction.ROLE_REVOKED,
        summary=_("%(actor)s revoked %(role)s from %(user)s (%(scope)s)"),
    )
    forget_access(assignment.user)
    return assignment


def role_assignments_expire(*, today: dt.date | None = None) -> int:
    """Record, once, each assignment that passed its end date (they stop counting at once anyway)."""
    today = today or timezone.localdate()
    expired = 0
    due = RoleAssignment.objects.filter(revoked_at__isnull=True, valid_until__lt=today).values_list(
        "pk", flat=True
    )
    for pk in due:
        with transaction.atomic():
            a = (
                RoleAssignment.objects.select_for_update(no_key=True, skip_locked=True, of=("self",))
                .select_related("user", "division", "school")
                .filter(pk=pk, revoked_at__isnull=True)
                .first()
            )
            if a is None:
                continue
            a.revoked_at = timezone.now()
            a.revoked_by = a.granted_by or a.user
            a.save(update_fields=["revoked_at", "revoked_by"])
            audit_record(
                actor=None,
                action=AuditAction.ROLE_EXPIRED,
                obj=a,
                summary=_("%(role)s of %(user)s (%(scope)s) ended on %(date)s")
                % {
                    "role": a.get_role_display(),
                    "user": a.user,
                    "scope": a.scope_label,
                    "date": date_vi(a.valid_until),
                },
                changes={"old": _assignment_snapshot(a)},
                school=a.school,
                division=a.division or (a.school.division if a.school else None),
            )
            expired += 1
    return expired


@transaction.atomic
def user_create(
    *, actor: User | None, username: str, full_name: str, email: str = "", password: str | None = None
) -> User:
    """Create an account (operators and school administrators do; nobody signs up)."""
    user = User(username=username, full_name=full_name, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    audit_record(
        actor=actor,
        action=AuditAction.USER_CREATED,
        obj=user,
        summary=_("Account %(username)s created") % {"username": username},
        changes={"new": {"username": username, "full_name": full_name, "email": email}},
    )
    return user


def user_changes_record(*, actor: User, user: User, changed: dict[str, tuple[Any, Any]]) -> None:
    """Audit a change made to an account through a form (the admin's change page)."""
    if not changed:
        return
    audit_record(
        actor=actor,
        action=AuditAction.USER_CHANGED,
        obj=user,
        summary=_("Account %(username)s changed: %(fields)s")
        % {"username": user.username, "fields": ", ".join(sorted(changed))},
        changes={name: {"old": old, "new": new} for name, (old, new) in changed.items()},
    )


SCHOOL_EDITABLE_FIELDS = ("name", "levels", "division", "address", "active")


@transaction.atomic
def school_update(*, actor: User | None, school: School, **fields: Any) -> School:
    """Change a school's public data (name, levels, division, address, active); audited."""
    locked = School.objects.select_for_update(no_key=True).get(pk=school.pk)
    changes: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        if name not in SCHOOL_EDITABLE_FIELDS:
            raise ValueError(f"school_update cannot change {name!r}")
        old = getattr(locked, name)
        if old != value:
            changes[name] = {"old": _plain(old), "new": _plain(value)}
            setattr(locked, name, value)
    if not changes:
        return locked
    locked.full_clean()
    locked.save(update_fields=list(changes))
    audit_record(
        actor=actor,
        action=AuditAction.SCHOOL_CHANGED,
        obj=locked,
        summary=_("School %(code)s changed: %(fields)s")
        % {"code": locked.code, "fields": ", ".join(changes)},
        changes=changes,
        school=locked,
        division=locked.division,
    )
    transaction.on_commit(lambda: school_route_forget(locked.code))
    return locked


def _plain(value: Any) -> Any:
    if isinstance(value, Division):
        return value.code
    if hasattr(value, "pk"):
        return value.pk
    return value


@transaction.atomic
def department_admin_bootstrap(*, user: User) -> RoleAssignment:
    """Make the first department administrator (nobody is there yet to grant it); audited.

    Refused once a department administrator exists: from then on, grants go through the rule.
    """
    from .choices import Role

    if RoleAssignment.objects.current().filter(role=Role.DEPARTMENT_ADMIN).exists():
        raise PermissionDenied(_("A department administrator already exists; ask them to grant the role."))
    assignment = RoleAssignment.objects.create(user=user, role=Role.DEPARTMENT_ADMIN)
    audit_record(
        actor=None,
        action=AuditAction.ROLE_GRANTED,
        obj=assignment,
        summary=_("%(user)s made the first department administrator (set-up)") % {"user": user},
        changes={"new": _assignment_snapshot(assignment)},
    )
    return assignment


def school_data_view_record(*, user: User, school: School, path: str) -> AuditEntry:
    """Log a page of a school's data opened by someone outside the school (under a data grant)."""
    connection_schema = connection.schema_name
    connection.set_schema_to_public()
    try:
        return AuditEntry.objects.create(
            actor=user,
            action=AuditAction.SCHOOL_DATA_VIEWED,
            object_type="portal.school",
            object_id=str(school.pk),
            summary=(_("%(user)s opened %(path)s") % {"user": user, "path": path})[:300],
            school_id=school.pk,
            division_id=school.division_id,
        )
    finally:
        if connection_schema != connection.schema_name:
            connection.set_tenant(school)


def connection_tenant_set(school: School) -> None:
    """Point this process's database connection at `school`'s schema (a task or a command that
    works on one school; requests get theirs from django-tenants' middleware)."""
    connection.set_tenant(school)


def connection_tenant_reset() -> None:
    """Point this process's database connection back at the public schema."""
    connection.set_schema_to_public()


# The index of issued records (portal.IssuedRecord), written by the year record lifecycle
# (transcripts.records.services) in the transaction that issues or supersedes a version.
def issued_record_add(
    *,
    school: School,
    record_id: str,
    version: int,
    sha256: str,
    school_year: str,
    student_code: str,
    personal_id: str | None,
    at: dt.datetime,
) -> IssuedRecord:
    """Index a version that has just been issued. Call it in the transaction that issues it.

    The one place a verification code is made: a fresh random one for each indexed version. A
    collision (one in 2**80 per pair of records) is refused by the unique constraint and the
    code drawn again.
    """
    for attempt in range(3):
        try:
            with transaction.atomic():  # a savepoint: the issuing transaction survives a retry
                return IssuedRecord.objects.create(
                    school=school,
                    record_id=record_id,
                    version=version,
                    sha256=sha256,
                    school_year=school_year,
                    student_code=student_code,
                    personal_id_digest=personal_id_digest(personal_id),
                    status=IssuedRecordStatus.ISSUED,
                    issued_at=at,
                    status_changed_at=at,
                    verification_code=verification_code_new(),
                )
        except IntegrityError as error:
            if "issued_record_verification_code_unique" not in str(error) or attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover -- the loop returns or raises


def issued_record_status_set(*, record_id: str, version: int, status: str, at: dt.datetime) -> int:
    """Mirror a superseded or revoked version; a version never issued has no row (0 returned)."""
    return IssuedRecord.objects.filter(record_id=record_id, version=version).update(
        status=status, status_changed_at=at
    )
