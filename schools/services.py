"""Writes to a school's own data. Call them with the school's schema active.

Every write to a class, its enrolments or its teaching assignments goes through a function here,
and each of them takes the class row lock and refuses a class whose year the principal approved
(ValidationError, code "class_closed"). The database refuses the same writes by triggers
(transcripts migration 0011); the check here comes first so the user reads why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.choices import AuditAction, Role
from portal.models import School, User
from portal.permissions import access_for, can_manage_teachers
from portal.progress.services import progress_changed
from portal.selectors import school_teacher_is_current
from portal.services import audit_record

from .choices import EnrolmentStatus, Ruleset
from .curriculum import SUBJECT_NAMES, curriculum_for
from .exports import workbook_text_only as workbook_text_only  # every workbook the portal writes
from .models import (
    CurriculumEntry,
    Enrolment,
    SchoolClass,
    SchoolYear,
    Student,
    Subject,
    TeachingAssignment,
    Term,
)

PRIMARY, LOWER, UPPER, CONTINUING = "primary", "lower_secondary", "upper_secondary", "continuing"
# The progress parts a change of classes or enrolments moves (portal.progress.services): the
# school's students and classes, and the books (a studying student without results leaves a
# class's grade book incomplete; one who leaves may complete it).
ENROLMENT_PARTS = ("schools", "books")
GRADES = {PRIMARY: range(1, 6), LOWER: range(6, 10), UPPER: range(10, 13), CONTINUING: range(6, 13)}


def grades_for_levels(levels: list[str]) -> list[int]:
    return sorted({grade for level in levels for grade in GRADES[level]})


def ruleset_for(*, grade: int, levels: list[str]) -> str:
    """TT27 for grades 1-5; TT43 in a continuing-education centre; TT22 otherwise."""
    if grade <= 5:
        return Ruleset.TT27
    return Ruleset.TT43 if CONTINUING in levels else Ruleset.TT22


@transaction.atomic
def school_year_open(
    *, code: str, starts_on: dt.date, ends_on: dt.date, levels: list[str], make_current: bool = True
) -> SchoolYear:
    """Open a school year: its two terms and its curriculum (one row per grade and subject)."""
    if make_current:
        SchoolYear.objects.filter(is_current=True).update(is_current=False)
    year = SchoolYear(code=code, starts_on=starts_on, ends_on=ends_on, is_current=make_current)
    year.full_clean()
    year.save()
    Term.objects.bulk_create([Term(school_year=year, number=1), Term(school_year=year, number=2)])
    subjects = {s.code: s for s in Subject.objects.all()}
    missing = [Subject(code=c, name=n) for c, n in SUBJECT_NAMES.items() if c not in subjects]
    for subject in Subject.objects.bulk_create(missing):
        subjects[subject.code] = subject
    entries = []
    for grade in grades_for_levels(levels):
        for position, (code_, kind, regular, has_test, has_mid) in enumerate(
            curriculum_for(grade, continuing=CONTINUING in levels)
        ):
            entries.append(
                CurriculumEntry(
                    school_year=year,
                    grade=grade,
                    subject=subjects[code_],
                    kind=kind,
                    regular_count=regular,
                    has_test=has_test,
                    has_mid_test=has_mid,
                    position=position,
                )
            )
    CurriculumEntry.objects.bulk_create(entries)
    return year


# What an approved class refuses, by the change asked for; each says why in the user's words.
CLASS_CLOSED_REASONS = {
    "students": gettext_lazy(
        "Class %(name)s has been approved by the principal for the year: "
        "students can no longer be added to it, moved or removed."
    ),
    "number": gettext_lazy(
        "Class %(name)s has been approved by the principal for the year: "
        "the students' numbers in class can no longer change."
    ),
    "homeroom": gettext_lazy(
        "Class %(name)s has been approved by the principal for the year: "
        "its homeroom teacher can no longer change."
    ),
    "assignments": gettext_lazy(
        "Class %(name)s has been approved by the principal for the year: "
        "its teaching assignments can no longer change."
    ),
    "name": gettext_lazy(
        "Class %(name)s has been approved by the principal for the year: it can no longer be renamed."
    ),
}


def class_closed_reason(school_class: SchoolClass, change: str) -> str:
    """Why `change` (a key of CLASS_CLOSED_REASONS) is refused for an approved class."""
    return str(CLASS_CLOSED_REASONS[change]) % {"name": school_class.name}


def classes_lock_open(*, class_ids: set[int] | list[int], change: str) -> dict[int, SchoolClass]:
    """Lock the classes' rows and refuse if any was approved; return them by id.

    Run inside the writing transaction: the principal's approval (class_year_close) locks the
    same row, so an approval either comes before this read and is seen, or waits until the write
    commits. Rows are locked in id order, so two writers cannot deadlock on them.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("classes_lock_open runs inside the writing transaction")
    classes = {
        c.pk: c
        for c in SchoolClass.objects.select_for_update(no_key=True).filter(pk__in=class_ids).order_by("pk")
    }
    for school_class in classes.values():
        if school_class.closed_at is not None:
            raise ValidationError(class_closed_reason(school_class, change), code="class_closed")
    return classes


@transaction.atomic
def class_create(*, school_year: SchoolYear, name: str, grade: int, levels: list[str], homeroom_teacher=None):
    school_class = SchoolClass(
        school_year=school_year,
        name=name,
        grade=grade,
        ruleset=ruleset_for(grade=grade, levels=levels),
        homeroom_teacher=homeroom_teacher,
    )
    school_class.full_clean()
    school_class.save()
    progress_changed(school_year=school_year.code, parts=ENROLMENT_PARTS)
    return school_class


@transaction.atomic
def class_update(*, school_class: SchoolClass, name: str | None = None, homeroom_teacher=None) -> SchoolClass:
    """Rename a class or give it another homeroom teacher (None leaves each as it is)."""
    locked = classes_lock_open(class_ids=[school_class.pk], change="homeroom" if name is None else "name")
    school_class = locked[school_class.pk]
    changed = []
    if name is not None and name != school_class.name:
        school_class.name = name
        changed.append("name")
    if homeroom_teacher is not None and homeroom_teacher.pk != school_class.homeroom_teacher_id:
        school_class.homeroom_teacher = homeroom_teacher
        changed.append("homeroom_teacher")
    if changed:
        school_class.full_clean()
        school_class.save(update_fields=changed)
    return school_class


@transaction.atomic
def students_enrol(*, enrolments: list[Enrolment]) -> list[Enrolment]:
    """Create enrolments (unsaved Enrolment objects), many at once: one lock per class, one insert."""
    classes_lock_open(class_ids={e.school_class_id for e in enrolments}, change="students")
    for enrolment in enrolments:
        # Uniqueness (one active enrolment per class) is the database's constraint.
        enrolment.full_clean(
            exclude=["student", "school_class"], validate_unique=False, validate_constraints=False
        )
    created = Enrolment.objects.bulk_create(enrolments)
    for code in set(
        SchoolYear.objects.filter(classes__pk__in={e.school_class_id for e in created}).values_list(
            "code", flat=True
        )
    ):
        progress_changed(school_year=code, parts=ENROLMENT_PARTS)
    return created


@transaction.atomic
def student_enrol(
    *, student: Student, school_class: SchoolClass, enrolled_on: dt.date, number: int = 0
) -> Enrolment:
    classes_lock_open(class_ids=[school_class.pk], change="students")
    enrolment = Enrolment(student=student, school_class=school_class, enrolled_on=enrolled_on, number=number)
    enrolment.full_clean()
    enrolment.save()
    progress_changed(school_year=_year_code(school_class), parts=ENROLMENT_PARTS)
    return enrolment


@transaction.atomic
def enrolment_number_set(*, enrolment: Enrolment, number: int) -> Enrolment:
    """The student's number in the class list."""
    classes_lock_open(class_ids=[enrolment.school_class_id], change="number")
    enrolment.number = number
    enrolment.full_clean(
        exclude=["student", "school_class"], validate_unique=False, validate_constraints=False
    )
    enrolment.save(update_fields=["number"])
    return enrolment


@transaction.atomic
def teaching_assignment_set(*, school_class: SchoolClass, subject: Subject, teacher) -> TeachingAssignment:
    classes_lock_open(class_ids=[school_class.pk], change="assignments")
    assignment, _created = TeachingAssignment.objects.update_or_create(
        school_class=school_class, subject=subject, defaults={"teacher": teacher}
    )
    return assignment


def _year_code(school_class: SchoolClass) -> str:
    """The school year's code of a class (one query unless its year is loaded)."""
    if "school_year" in school_class._state.fields_cache:
        return school_class.school_year.code
    return SchoolYear.objects.values_list("code", flat=True).get(classes__pk=school_class.pk)


def _can_manage_students(actor, school) -> bool:
    return bool(access_for(actor).roles_in_school(school.pk) & {Role.SCHOOL_ADMIN, Role.PRINCIPAL})


@transaction.atomic
def enrolment_close(
    *, actor, school, enrolment: Enrolment, on: dt.date, status: str, note: str = ""
) -> Enrolment:
    """A student leaves a class: transferred to another school, or left school. The row stays."""
    if not _can_manage_students(actor, school):
        raise PermissionDenied(_("Only the school administrator or the principal changes enrolments."))
    if status not in (EnrolmentStatus.TRANSFERRED_OUT, EnrolmentStatus.LEFT):
        raise ValidationError(_("A student leaves a class by transfer or by leaving school."))
    classes_lock_open(class_ids=[enrolment.school_class_id], change="students")
    enrolment = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise ValidationError(_("This enrolment is already closed."))
    enrolment.status, enrolment.left_on, enrolment.note = status, on, note
    enrolment.full_clean()
    enrolment.save(update_fields=["status", "left_on", "note"])
    progress_changed(school_year=_year_code(enrolment.school_class), school=school, parts=ENROLMENT_PARTS)
    return enrolment


@transaction.atomic
def enrolment_move(*, actor, school, enrolment: Enrolment, to_class: SchoolClass, on: dt.date) -> Enrolment:
    """Move a student to another class of the same year: the old enrolment is closed as moved,
    a new one opened; both stay, so the history shows where the student studied when."""
    if not _can_manage_students(actor, school):
        raise PermissionDenied(_("Only the school administrator or the principal changes enrolments."))
    # Both classes, the one left and the one joined, must be open; both rows are locked.
    classes_lock_open(class_ids=[enrolment.school_class_id, to_class.pk], change="students")
    enrolment = Enrolment.objects.select_for_update().select_related("school_class").get(pk=enrolment.pk)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise ValidationError(_("This enrolment is already closed."))
    if (
        to_class.school_year_id != enrolment.school_class.school_year_id
        or to_class.pk == enrolment.school_class_id
    ):
        raise ValidationError(_("Choose another class of the same school year."))
    enrolment.status, enrolment.left_on = EnrolmentStatus.MOVED, on
    enrolment.save(update_fields=["status", "left_on"])
    # student_enrol below recounts the year (the same year: both classes are of it).
    number = Enrolment.objects.filter(school_class=to_class).count() + 1
    return student_enrol(student=enrolment.student, school_class=to_class, enrolled_on=on, number=number)


# --- Handing a departing teacher's classes to another (issue 14) --------------------------------


@dataclass(frozen=True)
class HandOver:
    """What a hand-over moved: the classes whose homeroom teacher changed, and the teaching
    assignments (class and subject) given to the new teacher."""

    homeroom_classes: list[str]
    assignments: list[str]

    @property
    def count(self) -> int:
        return len(self.homeroom_classes) + len(self.assignments)


@transaction.atomic
def teacher_classes_hand_over(
    *, actor: User, school: School, from_teacher: User, to_teacher: User
) -> HandOver:
    """Give all of `from_teacher`'s current-year classes in this school (homeroom classes and
    teaching assignments) to `to_teacher`, in one step; audited. Call it with the school's schema
    active.

    For a teacher whose contract or semester has ended, or is about to. Only whoever manages the
    school's teachers may (the school administrator, the principal); the new teacher must hold a
    teacher's role here now (and the homeroom teacher's role if homeroom classes move). Classes
    the principal has approved for the year are not moved (their teachers are history now), and
    neither is what was done before: scores keep who entered them, signatures who signed.
    """
    if not can_manage_teachers(actor, school):
        raise PermissionDenied(_("Only the school administrator or the principal hands classes over."))
    if from_teacher.pk == to_teacher.pk:
        raise ValidationError(_("Choose another teacher to take the classes over."))
    # The new teacher's roles are locked with the check: a revocation waits for the hand-over.
    if not school_teacher_is_current(user=to_teacher, school=school):
        raise ValidationError(
            _("%(name)s does not teach in this school now: grant them a teacher's role first.")
            % {"name": to_teacher.get_full_name()}
        )
    year = SchoolYear.objects.filter(is_current=True).first()
    if year is None:
        raise ValidationError(_("The school has no current school year."))
    class_ids = set(
        SchoolClass.objects.filter(school_year=year, closed_at__isnull=True)
        .filter(homeroom_teacher_id=from_teacher.pk)
        .values_list("pk", flat=True)
    ) | set(
        TeachingAssignment.objects.filter(
            school_class__school_year=year, school_class__closed_at__isnull=True, teacher_id=from_teacher.pk
        ).values_list("school_class_id", flat=True)
    )
    if not class_ids:
        raise ValidationError(
            _("%(name)s has no class of this school year to hand over.")
            % {"name": from_teacher.get_full_name()}
        )
    classes = classes_lock_open(class_ids=class_ids, change="assignments")
    homeroom = sorted(
        (c for c in classes.values() if c.homeroom_teacher_id == from_teacher.pk), key=lambda c: c.name
    )
    if homeroom and not school_teacher_is_current(
        user=to_teacher, school=school, roles={Role.HOMEROOM_TEACHER}
    ):
        raise ValidationError(
            _(
                "%(name)s is not a homeroom teacher in this school: grant them the homeroom teacher's "
                "role first, or hand the homeroom classes (%(classes)s) to someone who is."
            )
            % {"name": to_teacher.get_full_name(), "classes": ", ".join(c.name for c in homeroom)}
        )
    assignments = list(
        TeachingAssignment.objects.select_for_update(no_key=True)
        .filter(school_class_id__in=list(classes), teacher_id=from_teacher.pk)
        .select_related("school_class", "subject")
        .order_by("school_class__name", "subject__code")
    )
    for school_class in homeroom:
        school_class.homeroom_teacher = to_teacher
        school_class.save(update_fields=["homeroom_teacher"])
    TeachingAssignment.objects.filter(pk__in=[a.pk for a in assignments]).update(teacher=to_teacher)
    moved = HandOver(
        homeroom_classes=[c.name for c in homeroom],
        assignments=[f"{a.school_class.name}: {a.subject.name}" for a in assignments],
    )
    audit_record(
        actor=actor,
        action=AuditAction.TEACHER_CLASSES_HANDED_OVER,
        obj=from_teacher,
        summary=_("Classes of %(from)s handed over to %(to)s: %(classes)s")
        % {
            "from": from_teacher.get_full_name(),
            "to": to_teacher.get_full_name(),
            "classes": ", ".join(moved.homeroom_classes + moved.assignments),
        },
        changes={
            "from": from_teacher.username,
            "to": to_teacher.username,
            "homeroom_classes": moved.homeroom_classes,
            "assignments": moved.assignments,
        },
        school=school,
        division=school.division,
    )
    return moved
