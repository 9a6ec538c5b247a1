"""Who may read and write which part of a school's grade book, and who may do what to a year record
(style.md rule 6). Part of the app's public face: signing asks `can_sign` and `SEAL_HOLDERS`."""

from __future__ import annotations

from portal.choices import SCHOOL_LEADER_ROLES, Role
from portal.models import School, User
from portal.permissions import access_for, can_open_school_data
from schools.choices import Ruleset
from schools.models import SchoolClass, TeachingAssignment

from .choices import SignatureStep

LEADERS = SCHOOL_LEADER_ROLES | {Role.SCHOOL_ADMIN}


def can_view_gradebook(user: User, school: School, school_class: SchoolClass, teacher_id: int | None) -> bool:
    """The subject's teacher, the class's homeroom teacher, the school's leaders, and supervisors."""
    roles = access_for(user).roles_in_school(school.pk)
    if roles & LEADERS:
        return True
    if not roles:
        return can_open_school_data(user, school)  # a supervisor under a data grant (read only)
    return user.pk in (teacher_id, school_class.homeroom_teacher_id)


def can_edit_subject(user: User, school: School, school_class: SchoolClass, teacher_id: int | None) -> bool:
    """A teacher edits the subjects assigned to them; in primary, the homeroom teacher also edits
    the subjects that have no specialist teacher (they teach most of them)."""
    roles = access_for(user).roles_in_school(school.pk)
    if not roles & {Role.SUBJECT_TEACHER, Role.HOMEROOM_TEACHER}:
        return False
    if teacher_id is not None:
        return user.pk == teacher_id
    return school_class.ruleset == Ruleset.TT27 and user.pk == school_class.homeroom_teacher_id


def can_edit_homeroom(user: User, school: School, school_class: SchoolClass) -> bool:
    """Conduct, absences, qualities and the year's comments: the class's homeroom teacher."""
    roles = access_for(user).roles_in_school(school.pk)
    return Role.HOMEROOM_TEACHER in roles and user.pk == school_class.homeroom_teacher_id


def can_lock_terms(user: User, school: School) -> bool:
    """Locking and unlocking a term, approving the year close: the principal or a vice-principal."""
    return bool(access_for(user).roles_in_school(school.pk) & SCHOOL_LEADER_ROLES)


def assigned_teacher_id(school_class: SchoolClass, subject_id: int) -> int | None:
    return (
        TeachingAssignment.objects.filter(school_class=school_class, subject_id=subject_id)
        .values_list("teacher_id", flat=True)
        .first()
    )


# Year records.

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


# The school roles that let a user make each signature step (can_sign asks them, with the class
# for the homeroom teacher's): a signer's right to a step lasts as long as these roles do.
SIGNING_STEP_ROLES: dict[str, frozenset[str]] = {
    SignatureStep.HOMEROOM_TEACHER: frozenset({Role.HOMEROOM_TEACHER}),
    SignatureStep.PRINCIPAL: SCHOOL_LEADER_ROLES,
    SignatureStep.SEAL: SEAL_HOLDERS,
}


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
