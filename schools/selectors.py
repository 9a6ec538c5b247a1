"""Reads of a school's own schema."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q

from .choices import EnrolmentStatus
from .models import Enrolment, SchoolClass, SchoolYear, Student


def school_year_current() -> SchoolYear | None:
    return SchoolYear.objects.filter(is_current=True).first()


def students_personal_ids(student_codes: Iterable[str]) -> dict[str, str]:
    """The verified personal ID number of each of these students that has one, by student code
    (one query; the connection is on the school's schema)."""
    rows = Student.objects.filter(student_code__in=list(student_codes), personal_id__isnull=False)
    return {code: number for code, number in rows.values_list("student_code", "personal_id") if number}


# --- Progress (portal.SchoolProgress): this app's part -----------------------------------------

# A year's students: those studying in one of its classes, or who completed it there.
COUNTED_ENROLMENTS = (EnrolmentStatus.ACTIVE, EnrolmentStatus.COMPLETED)
PROGRESS_FIELDS = ("students", "students_without_personal_id", "classes")


def progress_counts(school: object, school_year: str) -> dict[str, int]:
    """This app's counters of the school's progress row for one school year (two queries; the
    connection is on the school's schema): its students, those without a verified personal ID,
    its classes."""
    enrolled = Enrolment.objects.filter(
        school_class__school_year__code=school_year, status__in=COUNTED_ENROLMENTS
    ).aggregate(
        students=Count("student", distinct=True),
        missing=Count("student", distinct=True, filter=Q(student__personal_id__isnull=True)),
    )
    return {
        "students": enrolled["students"],
        "students_without_personal_id": enrolled["missing"],
        "classes": SchoolClass.objects.filter(school_year__code=school_year).count(),
    }


def progress_years(school: object) -> list[str]:
    """The school years the school holds (for the reconciliation of its progress rows)."""
    return list(SchoolYear.objects.values_list("code", flat=True))
