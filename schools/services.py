"""Writes to a school's own data. Call them with the school's schema active."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .choices import EnrolmentStatus, Ruleset
from .curriculum import SUBJECT_NAMES, curriculum_for
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
    return school_class


def student_enrol(
    *, student: Student, school_class: SchoolClass, enrolled_on: dt.date, number: int = 0
) -> Enrolment:
    enrolment = Enrolment(student=student, school_class=school_class, enrolled_on=enrolled_on, number=number)
    enrolment.full_clean()
    enrolment.save()
    return enrolment


def teaching_assignment_set(*, school_class: SchoolClass, subject: Subject, teacher) -> TeachingAssignment:
    assignment, _created = TeachingAssignment.objects.update_or_create(
        school_class=school_class, subject=subject, defaults={"teacher": teacher}
    )
    return assignment


def _can_manage_students(actor, school) -> bool:
    from portal.choices import Role
    from portal.permissions import access_for

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
    enrolment = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise ValidationError(_("This enrolment is already closed."))
    enrolment.status, enrolment.left_on, enrolment.note = status, on, note
    enrolment.full_clean()
    enrolment.save(update_fields=["status", "left_on", "note"])
    return enrolment


@transaction.atomic
def enrolment_move(*, actor, school, enrolment: Enrolment, to_class: SchoolClass, on: dt.date) -> Enrolment:
    """Move a student to another class of the same year: the old enrolment is closed as moved,
    a new one opened; both stay, so the history shows where the student studied when."""
    if not _can_manage_students(actor, school):
        raise PermissionDenied(_("Only the school administrator or the principal changes enrolments."))
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
    number = Enrolment.objects.filter(school_class=to_class).count() + 1
    return student_enrol(student=enrolment.student, school_class=to_class, enrolled_on=on, number=number)
