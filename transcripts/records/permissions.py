"""Who may do what to a year record (style.md rule 6), on top of transcripts.permissions."""

from __future__ import annotations

from portal.choices import Role
from portal.models import School, User
from portal.permissions import access_for
from schools.models import SchoolClass
from transcripts.choices import SignatureStep
from transcripts.permissions import can_edit_homeroom, can_lock_terms

# Who makes a step of the lifecycle: the class's homeroom teacher, the school's leaders (the
# principal or a vice-principal), or the system (a background task, actor None) — which a leader
# may also do by hand.
HOMEROOM = "homeroom"
LEADER = "leader"
SYSTEM = "system"

# Who signs each step (transcripts.choices.SignatureStep): the class's homeroom teacher; the principal or a
# vice-principal (on the principal's behalf); the school seal, applied by the school's
# administrator (the clerk who holds the token) or the principal.
SEAL_HOLDERS = frozenset({Role.SCHOOL_ADMIN, Role.PRINCIPAL})


def can_create_year_records(user: User, school: School, school_class: SchoolClass) -> bool:
    """Creating a class's records, asking for a correction: its homeroom teacher or a leader."""
    return can_lock_terms(user, school) or can_edit_homeroom(user, school, school_class)


def can_make_step(user: User | None, school: School, school_class: SchoolClass, who: str) -> bool:
    """Whether `user` (None: the system) may make a step that `who` makes."""
    if user is None:
        return who == SYSTEM
    if who == HOMEROOM:
        return can_edit_homeroom(user, school, school_class)
    return can_lock_terms(user, school)  # LEADER, and SYSTEM steps made by hand


def can_decide_on_records(user: User, school: School) -> bool:
    """Approving a correction, revoking a record: the principal or a vice-principal."""
    return can_lock_terms(user, school)


def can_sign(user: User, school: School, school_class: SchoolClass | None, step: str) -> bool:
    """Whether `user` may make signature `step` (a SignatureStep) on a
    record of `school_class`, or (None) on records of any class of the school: the principal's and
    the seal's steps; a homeroom teacher signs their own class only. Asked when a batch starts and
    again before each signature."""
    if step == SignatureStep.HOMEROOM_TEACHER:
        return school_class is not None and can_edit_homeroom(user, school, school_class)
    if step == SignatureStep.PRINCIPAL:
        return can_lock_terms(user, school)
    if step == SignatureStep.SEAL:
        return bool(access_for(user).roles_in_school(school.pk) & SEAL_HOLDERS)
    return False
