"""Capability questions about users, and the one delegation rule (who may grant which role where).

Views, the admin and services ask these; nothing else compares role codes (style.md rule 6).
A user's current assignments are read once per request and kept on the user object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _

from .choices import ROLE_SCOPE, SCHOOL_LEADER_ROLES, TEACHER_ROLES, TWO_FACTOR_ROLES, Role, ScopeKind
from .models import Division, RoleAssignment, School, User

_CACHE_ATTR = "_hocba_access"


@dataclass
class Access:
    """What a user holds right now, in a shape that answers scope questions without queries."""

    roles: set[str] = field(default_factory=set)
    department_roles: set[str] = field(default_factory=set)
    department_data: bool = False
    division_ids: set[int] = field(default_factory=set)
    managed_division_ids: set[int] = field(default_factory=set)
    data_division_ids: set[int] = field(default_factory=set)
    school_roles: dict[int, set[str]] = field(default_factory=dict)

    @property
    def is_department_admin(self) -> bool:
        return Role.DEPARTMENT_ADMIN in self.department_roles

    @property
    def is_department_staff(self) -> bool:
        return bool(self.department_roles)

    def roles_in_school(self, school_id: int) -> set[str]:
        return self.school_roles.get(school_id, set())


def access_for(user: User) -> Access:
    """The user's current roles, read in one query and cached on the user object."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    access = Access()
    if user.is_authenticated and user.is_active:
        for a in (
            RoleAssignment.objects.current()
            .filter(user=user)
            .only("role", "division_id", "school_id", "is_manager", "data_access")
        ):
            access.roles.add(a.role)
            scope = ROLE_SCOPE[a.role]
            if scope == ScopeKind.DEPARTMENT:
                access.department_roles.add(a.role)
                access.department_data |= a.data_access
            elif scope == ScopeKind.DIVISION:
                # Set, by the check constraint role_assignment_scope_matches_role.
                division_id = cast(int, a.division_id)
                access.division_ids.add(division_id)
                if a.is_manager:
                    access.managed_division_ids.add(division_id)
                if a.data_access:
                    access.data_division_ids.add(division_id)
            else:
                school_id = cast(int, a.school_id)  # set, as division_id above
                access.school_roles.setdefault(school_id, set()).add(a.role)
    setattr(user, _CACHE_ATTR, access)
    return access


def forget_access(user: User) -> None:
    """Drop the cached roles (after a grant or revocation in the same request)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


# --- Schools ---------------------------------------------------------------------------------


def can_supervise_school(user: User, school: School) -> bool:
    """Does the user supervise this school: department staff, or an officer of its division?
    (Figures only; its named data needs can_open_school_data.)"""
    access = access_for(user)
    return access.is_department_staff or (
        school.division_id is not None and school.division_id in access.division_ids
    )


def school_is_visible(user: User, school: School) -> bool:
    """May the user know this school exists? If not, every page of it answers 404."""
    return school.pk in access_for(user).school_roles or can_supervise_school(user, school)


def can_open_school_data(user: User, school: School) -> bool:
    """May the user open the school's pages (students, classes, records)?

    School staff may. Department and division staff may only with an explicit data grant
    (domain.md §2: an operator does not read student data without one).
    """
    access = access_for(user)
    if school.pk in access.school_roles:
        return school.active or access.is_department_staff
    if access.department_data:
        return True
    return school.division_id is not None and school.division_id in access.data_division_ids


def can_manage_teachers(user: User, school: School) -> bool:
    """Managing the school's teachers: granting their roles and handing a departing teacher's
    classes to another (the school administrator and the principal, as the delegation rule)."""
    return bool(access_for(user).roles_in_school(school.pk) & {Role.SCHOOL_ADMIN, Role.PRINCIPAL})


def can_export_personal_data(user: User, school: School) -> bool:
    """Handing a student of this school their personal data on request (the Personal Data
    Protection Law 2025: the data subject's right of access): the school's principal, who answers
    for the school as the controller; the department administrator under a data grant."""
    access = access_for(user)
    if Role.PRINCIPAL in access.roles_in_school(school.pk):
        return school.active
    return access.is_department_admin and access.department_data


def can_export_personal_data_across_schools(user: User) -> bool:
    """The same request for a person found in several schools by their personal ID (a student who
    moved schools): the department administrators holding a data grant (domain.md §2: operators do
    not read student data without one)."""
    if not (user.is_active and user.is_authenticated):
        return False
    access = access_for(user)
    return access.is_department_admin and access.department_data


# Who signs a year record (transcripts.permissions.can_sign): the homeroom teacher with a
# key file, the principal or a vice-principal, and the seal's holders (the school administrator).
SIGNING_ROLES = frozenset({Role.HOMEROOM_TEACHER, Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN})


def requires_two_factor(user: User) -> bool:
    """Must the user log in with a second factor (TOTP)? A capability question, not a role list:

    - whoever can grant a role somewhere (a division manager, a school administrator, a principal,
      the department administrator), since a stolen password would hand out accounts;
    - whoever signs (a homeroom teacher signs the records of its class with a key file);
    - whoever reads named students' data beyond one class: the school's leaders and
      administrators (TWO_FACTOR_ROLES) and the holders of a data-access grant;
    - superusers.
    """
    if user.is_superuser:
        return True
    access = access_for(user)
    return bool(
        access.roles & (TWO_FACTOR_ROLES | SIGNING_ROLES)
        or access.department_data
        or access.data_division_ids
        or access.managed_division_ids
        or grantable_roles(user)
    )


# --- Delegation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)

DIVISION_MANAGER_GRANTS = frozenset({Role.SCHOOL_ADMIN, Role.PRINCIPAL, Role.VICE_PRINCIPAL})


def can_grant(
    actor: User,
    *,
    grantee: User | None,
    role: str,
    division: Division | None = None,
    school: School | None = None,
    is_manager: bool = False,
    data_access: bool = False,
) -> Decision:
    """The delegation rule, in one place.

    - the department administrator grants any role anywhere, including data access and the
      division manager flag;
    - a division officer with the manager flag grants school administrators, principals and
      vice-principals in the schools of its division;
    - a school administrator or the principal grants homeroom and subject teachers in its school;
    - nobody grants to themselves, above their own scope, or outside it.
    """
    if role not in ROLE_SCOPE:
        return Decision(False, str(_("Unknown role.")))
    scope = ROLE_SCOPE[role]
    if scope == ScopeKind.DEPARTMENT and (division or school):
        return Decision(
            False, str(_("This role applies to the whole department; choose no division or school."))
        )
    if scope == ScopeKind.DIVISION and (division is None or school is not None):
        return Decision(False, str(_("This role needs a division, and no school.")))
    if scope == ScopeKind.SCHOOL and (school is None or division is not None):
        return Decision(False, str(_("This role needs a school, and no division.")))
    if is_manager and role != Role.DIVISION_OFFICER:
        return Decision(False, str(_("Only a division officer can be a division manager.")))
    if grantee is not None and grantee.pk == actor.pk:
        return Decision(False, str(_("You cannot grant a role to yourself.")))
    if grantee is not None and not grantee.is_active:
        return Decision(False, str(_("This account is disabled.")))
    if school is not None and not school.active:
        return Decision(False, str(_("This school is not active.")))

    return _delegates(actor, role=role, school=school, is_manager=is_manager, data_access=data_access)


def _delegates(
    actor: User, *, role: str, school: School | None, is_manager: bool, data_access: bool
) -> Decision:
    """The authority half of the delegation rule: does the actor's standing cover this role here?

    (can_grant adds the checks of the form's shape; can_manage_account asks this for every role
    an account holds.)
    """
    access = access_for(actor)
    if access.is_department_admin:
        return ALLOW
    if data_access or is_manager:
        return Decision(
            False, str(_("Only the department administrator grants data access or the manager flag."))
        )
    if (
        role in DIVISION_MANAGER_GRANTS
        and school is not None
        and school.division_id is not None
        and school.division_id in access.managed_division_ids
    ):
        return ALLOW
    if (
        role in TEACHER_ROLES
        and school is not None
        and access.roles_in_school(school.pk) & {Role.SCHOOL_ADMIN, Role.PRINCIPAL}
    ):
        return ALLOW
    return Decision(False, str(_("Your roles do not allow granting this role in this scope.")))


def can_manage_account(actor: User, target: User) -> Decision:
    """May the actor change the target's password, e-mail, names, active flag or second factor?

    The delegation rule decides (issue 9): only whoever could grant every role the account holds
    may take it over, since whoever sets its password becomes it. A school administrator manages
    its teachers, not its principal; a division manager its schools' leaders and administrators,
    not their teachers; the department administrator everyone. Nobody manages their own account
    here (they use their account pages), and only a superuser manages a superuser.

    The roles counted are those in force; an account whose roles have all ended is judged by the
    roles it held, and one that never held any is the department administrator's.
    """
    if actor.is_superuser:
        return ALLOW
    if not (actor.is_authenticated and actor.is_active):
        return Decision(False, str(_("Your roles do not allow managing this account.")))
    if target.pk == actor.pk:
        return Decision(False, str(_("You cannot manage your own account here; use your account pages.")))
    if target.is_superuser:
        return Decision(False, str(_("Only a superuser manages a superuser's account.")))
    held = list(RoleAssignment.objects.current().filter(user=target).select_related("school", "division"))
    if not held:
        held = list(RoleAssignment.objects.filter(user=target).select_related("school", "division"))
    if not held:
        if access_for(actor).is_department_admin:
            return ALLOW
        return Decision(
            False, str(_("This account holds no role; only the department administrator manages it."))
        )
    for assignment in held:
        decision = _delegates(
            actor,
            role=assignment.role,
            school=assignment.school,
            is_manager=assignment.is_manager,
            data_access=assignment.data_access,
        )
        if not decision:
            return Decision(
                False,
                str(
                    _(
                        "This account holds the role %(role)s (%(scope)s), which you may not grant; "
                        "only whoever may grant all its roles may change its password, e-mail, "
                        "active flag or second factor."
                    )
                    % {"role": assignment.get_role_display(), "scope": assignment.scope_label}
                ),
            )
    return ALLOW


def can_unlock_logins(user: User) -> bool:
    """Unlocking an account locked out by wrong passwords: the operators (department
    administrators) and superusers."""
    return bool(user.is_superuser or access_for(user).is_department_admin)


def can_revoke(actor: User, assignment: RoleAssignment) -> Decision:
    """Whoever could grant an assignment may revoke it; nobody revokes their own."""
    if assignment.revoked_at is not None:
        return Decision(False, str(_("This role has already been revoked.")))
    return can_grant(
        actor,
        grantee=assignment.user,
        role=assignment.role,
        division=assignment.division,
        school=assignment.school,
        is_manager=assignment.is_manager,
        data_access=assignment.data_access,
    )


def grantable_roles(actor: User) -> list[str]:
    """Roles the actor may grant somewhere (to fill a form's choices)."""
    access = access_for(actor)
    if access.is_department_admin:
        return list(Role.values)
    roles: set[str] = set()
    if access.managed_division_ids:
        roles |= DIVISION_MANAGER_GRANTS
    if any(r & {Role.SCHOOL_ADMIN, Role.PRINCIPAL} for r in access.school_roles.values()):
        roles |= TEACHER_ROLES
    return [r for r in Role.values if r in roles]


# --- The admin site --------------------------------------------------------------------------


def can_use_admin(user: User | AnonymousUser) -> bool:
    """Operators, division staff and school administrators/principals use the admin site."""
    if not (user.is_authenticated and user.is_active):
        return False
    access = access_for(user)
    return bool(
        access.is_department_staff
        or access.division_ids
        or any(r & ({Role.SCHOOL_ADMIN} | SCHOOL_LEADER_ROLES) for r in access.school_roles.values())
    )


def can_administer_province(user: User) -> bool:
    """Create and change divisions and schools, the department itself."""
    return access_for(user).is_department_admin
