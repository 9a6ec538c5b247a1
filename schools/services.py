"""Writes to a school's own data. Call them with the school's schema active."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from .choices import Ruleset
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
