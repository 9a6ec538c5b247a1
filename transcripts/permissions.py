"""Who may read and write which part of a school's grade book (style.md rule 6)."""

from __future__ import annotations

from portal.choices import SCHOOL_LEADER_ROLES, Role
from portal.models import School, User
from portal.permissions import access_for, can_open_school_data
from schools.choices import Ruleset
from schools.models import SchoolClass, TeachingAssignment

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
