"""Reads of a school's own schema."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Q, QuerySet

from portal.models import School, User

from .choices import EnrolmentStatus
from .models import Enrolment, SchoolClass, SchoolYear, Student, TeachingAssignment


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


# --- A teacher's classes (issue 14: visiting and contract teachers) -----------------------------


def teacher_classes_current(*, teacher_id: int) -> QuerySet[SchoolClass]:
    """The current year's classes the teacher teaches in this school (its schema is active), as
    homeroom teacher or for a subject, each with `subject_codes` and `subject_names`: the subjects
    they teach there, in the same order (one query)."""
    taught = TeachingAssignment.objects.filter(teacher_id=teacher_id).values("school_class_id")
    mine = Q(assignments__teacher_id=teacher_id)
    return (
        SchoolClass.objects.filter(school_year__is_current=True)
        .filter(Q(homeroom_teacher_id=teacher_id) | Q(pk__in=taught))
        .annotate(
            subject_codes=ArrayAgg(
                "assignments__subject__code", filter=mine, order_by="assignments__subject__code", default=[]
            ),
            subject_names=ArrayAgg(
                "assignments__subject__name", filter=mine, order_by="assignments__subject__code", default=[]
            ),
        )
        .order_by("grade", "name")
    )


def teachers_classes_current(*, teacher_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """For the hand-over page: each teacher's current-year classes here, as `class_entry` gives
    them (two queries whatever the number of teachers)."""
    ids = list(teacher_ids)
    result: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for school_class in SchoolClass.objects.filter(school_year__is_current=True, homeroom_teacher_id__in=ids):
        result[school_class.homeroom_teacher_id].append(  # type: ignore[index]  # filtered on it
            {"class": school_class, "homeroom": True, "subjects": []}
        )
    for a in (
        TeachingAssignment.objects.filter(school_class__school_year__is_current=True, teacher_id__in=ids)
        .select_related("school_class", "subject")
        .order_by("school_class__grade", "school_class__name", "subject__code")
    ):
        entries = result[a.teacher_id]
        entry = next((e for e in entries if e["class"].pk == a.school_class_id), None)
        if entry is None:
            entry = {"class": a.school_class, "homeroom": False, "subjects": []}
            entries.append(entry)
        entry["subjects"].append(a.subject.name)
    return result


def teacher_classes_across(user: User, schools: Sequence[School]) -> list[dict[str, Any]]:
    """The user's current classes in each of these schools, for the portal's home page (one query
    per school, each in its own schema): registered with portal.hooks by schools.apps."""
    entries: list[dict[str, Any]] = []
    for school in schools:
        with school:  # its schema, then back to the one before
            for school_class in teacher_classes_current(teacher_id=user.pk):
                # Annotated by teacher_classes_current (django-stubs do not see annotations).
                codes: list[str] = school_class.subject_codes  # type: ignore[attr-defined]
                names: list[str] = school_class.subject_names  # type: ignore[attr-defined]
                entries.append(
                    {
                        "school": school,
                        "class_id": school_class.pk,
                        "class_name": school_class.name,
                        "grade": school_class.grade,
                        "homeroom": school_class.homeroom_teacher_id == user.pk,
                        "subjects": list(zip(codes, names, strict=True)),
                    }
                )
    return entries
