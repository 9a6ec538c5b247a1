"""Reads of the grade book, in a fixed number of queries whatever the class size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from portal.models import School, User
from portal.permissions import access_for
from schools.choices import EnrolmentStatus, SubjectKind
from schools.models import CurriculumEntry, Enrolment, SchoolClass, TeachingAssignment

from .choices import PrimaryPeriod
from .models import AssessmentChange, PrimarySubjectAssessment, SubjectTermScores
from .permissions import LEADERS
from .services import REGULAR_FIELDS, display, row_average

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@dataclass
class GradebookRow:
    enrolment: Enrolment
    cells: dict[str, str] = field(default_factory=dict)
    average: str = ""


@dataclass
class Gradebook:
    school_class: SchoolClass
    entry: CurriculumEntry
    columns: list[tuple[str, StrOrPromise]]  # (field, header): headers are lazy translations
    rows: list[GradebookRow]
    term: int | None = None
    period: str | None = None


def classes_for(user: User, school: School, school_year_id: int) -> QuerySet[SchoolClass]:
    """The classes whose books the user opens: all for leaders and supervisors, else their own."""
    qs = SchoolClass.objects.filter(school_year_id=school_year_id).select_related("homeroom_teacher")
    roles = access_for(user).roles_in_school(school.pk)
    if not roles or roles & LEADERS:
        return qs
    taught = TeachingAssignment.objects.filter(teacher=user).values("school_class_id")
    return qs.filter(Q(homeroom_teacher=user) | Q(pk__in=taught))


def active_enrolments(school_class: SchoolClass) -> list[Enrolment]:
    return list(
        Enrolment.objects.filter(school_class=school_class, status=EnrolmentStatus.ACTIVE)
        .select_related("student")
        .order_by("number", "student__full_name")
    )


def gradebook_for(
    *, school_class: SchoolClass, entry: CurriculumEntry, term: int = 1, period: str = PrimaryPeriod.END1
) -> Gradebook:
    """All students of a class in one subject: three queries (students, rows, and the entry given)."""
    enrolments = active_enrolments(school_class)
    rows = {e.pk: GradebookRow(enrolment=e) for e in enrolments}
    if entry.kind == SubjectKind.PRIMARY:
        columns: list[tuple[str, StrOrPromise]] = [("level", _("Level"))]
        tested = entry.has_test and (period in (PrimaryPeriod.END1, PrimaryPeriod.END2) or entry.has_mid_test)
        if tested:
            columns.append(("test_score", _("Test score")))
        columns.append(("comment", _("Comment")))
        assessments = PrimarySubjectAssessment.objects.filter(
            enrolment__in=list(rows), subject_id=entry.subject_id, period=period
        )
        for assessment in assessments:
            rows[assessment.enrolment_id].cells = {
                name: display(getattr(assessment, name)) for name, _h in columns
            }
        return Gradebook(school_class, entry, columns, list(rows.values()), period=period)

    if entry.kind == SubjectKind.SCORED:
        columns = [
            (name, _("R%(number)d") % {"number": i})
            for i, name in enumerate(REGULAR_FIELDS[: entry.regular_count], start=1)
        ]
        columns += [("mid", _("Mid")), ("end", _("End")), ("comment", _("Comment"))]
    else:
        columns = [("level", _("Pass/Not")), ("comment", _("Comment"))]
    stored = SubjectTermScores.objects.filter(
        enrolment__in=list(rows), subject_id=entry.subject_id, term=term
    )
    for record in stored:
        row = rows[record.enrolment_id]
        row.cells = {name: display(getattr(record, name)) for name, _h in columns}
        if entry.kind == SubjectKind.SCORED:
            row.average = display(row_average(record, entry.regular_count))
    return Gradebook(school_class, entry, columns, list(rows.values()), term=term)


def cell_history(*, enrolment_id: int, table: str, row_id: int, field: str) -> QuerySet[AssessmentChange]:
    """Every change of one cell, newest first."""
    return (
        AssessmentChange.objects.filter(enrolment_id=enrolment_id, table=table, row_id=row_id, field=field)
        .select_related("actor")
        .order_by("-at", "-id")
    )
