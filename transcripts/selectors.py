"""Reads of the grade book, in a fixed number of queries whatever the class size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from portal.models import School, User
from portal.permissions import access_for
from schools.choices import EnrolmentStatus, SubjectKind
from schools.models import CurriculumEntry, Enrolment, SchoolClass, TeachingAssignment, Term

from .choices import PrimaryPeriod
from .models import (
    AssessmentChange,
    PrimarySubjectAssessment,
    QualityAssessment,
    Retake,
    StudentYear,
    SubjectTermScores,
)
from .permissions import LEADERS, can_edit_subject, can_view_gradebook
from .rules.codec import SUMMER_OUTCOMES, StoredAfterSummer, after_summer_from_json, result_from_json
from .rules.reassessment import subjects_to_retake
from .rules.tt22 import Outcome, SecondaryResult
from .rules.tt27 import PrimaryResult
from .services import REGULAR_FIELDS, Cell, display, row_average

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


# (class, [(entry, editable)], opens the homeroom view): one line of the grade book's index.
IndexBook = tuple[SchoolClass, list[tuple[CurriculumEntry, bool]], bool]


def gradebook_index_books(*, user: User, school: School, school_year_id: int) -> list[IndexBook]:
    """The classes and subjects `user` opens in a school year, each subject with whether they
    edit it, and whether they open the class's homeroom view (four queries)."""
    classes = list(classes_for(user, school, school_year_id))
    entries: dict[int, list[CurriculumEntry]] = {}
    for entry in CurriculumEntry.objects.filter(school_year_id=school_year_id).select_related("subject"):
        entries.setdefault(entry.grade, []).append(entry)
    teachers = {
        (a.school_class_id, a.subject_id): a.teacher_id
        for a in TeachingAssignment.objects.filter(school_class__school_year_id=school_year_id)
    }
    books: list[IndexBook] = []
    for school_class in classes:
        subjects = [
            (
                entry,
                school_class.closed_at is None
                and can_edit_subject(
                    user, school, school_class, teachers.get((school_class.pk, entry.subject_id))
                ),
            )
            for entry in entries.get(school_class.grade, [])
            if can_view_gradebook(
                user, school, school_class, teachers.get((school_class.pk, entry.subject_id))
            )
        ]
        if subjects:
            books.append((school_class, subjects, can_view_gradebook(user, school, school_class, None)))
    return books


def terms_of(*, school_year_id: int) -> QuerySet[Term]:
    """The school year's terms, with who locked each."""
    return Term.objects.filter(school_year_id=school_year_id).select_related("locked_by")


def term_is_locked(*, school_year_id: int, number: int) -> bool:
    """Whether term `number` of the school year is locked (no more changes)."""
    return Term.objects.filter(school_year_id=school_year_id, number=number, locked_at__isnull=False).exists()


def quality_levels_for(enrolments: list[Enrolment], period: str) -> dict[tuple[int, str], str]:
    """TT27 qualities and competencies of a period, by (enrolment id, code)."""
    return {
        (q.enrolment_id, q.code): q.level
        for q in QualityAssessment.objects.filter(enrolment__in=enrolments, period=period)
    }


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


def cell_changes(
    *, school_class: SchoolClass, entry: CurriculumEntry, cell: Cell
) -> QuerySet[AssessmentChange] | list[AssessmentChange]:
    """Every change of one grade book cell of the class, newest first (none for a cell never saved)."""
    model: type[PrimarySubjectAssessment | SubjectTermScores]
    key: dict[str, str | int | None]
    if cell.period:
        model, key = PrimarySubjectAssessment, {"period": cell.period}
    else:
        model, key = SubjectTermScores, {"term": cell.term}
    row = model.objects.filter(
        enrolment_id=cell.enrolment_id,
        enrolment__school_class=school_class,
        subject_id=entry.subject_id,
        **key,
    ).first()
    if row is None:
        return []
    return cell_history(
        enrolment_id=cell.enrolment_id,
        table=cast(str, model._meta.model_name),  # set on every concrete model
        row_id=row.pk,
        field=cell.field,
    )


def cell_history(*, enrolment_id: int, table: str, row_id: int, field: str) -> QuerySet[AssessmentChange]:
    """Every change of one cell, newest first."""
    return (
        AssessmentChange.objects.filter(enrolment_id=enrolment_id, table=table, row_id=row_id, field=field)
        .select_related("actor")
        .order_by("-at", "-id")
    )


# Stored year results, typed ------------------------------------------------------------------


def student_year_result(year: StudentYear | None) -> SecondaryResult | PrimaryResult | None:
    """The rules' result stored for a student's year (rules.codec), or None before it is computed."""
    if year is None or not year.results:
        return None
    return result_from_json(year.results)


def student_year_outcome(year: StudentYear | None) -> Outcome | None:
    """What the rules decided in June for a TT22/TT43 year; None for a primary or uncomputed one."""
    result = student_year_result(year)
    return result.outcome if isinstance(result, SecondaryResult) else None


def student_year_retakes(year: StudentYear | None) -> list[str]:
    """The subject codes a student is re-assessed in this August (none unless sent to re-assessment)."""
    result = student_year_result(year)
    if not isinstance(result, SecondaryResult) or result.outcome != Outcome.REASSESSMENT:
        return []
    return subjects_to_retake(result)


@dataclass
class SummerRow:
    """A student re-assessed or re-trained this summer: the June outcome, what they retake, August's."""

    year: StudentYear
    outcome: Outcome
    subjects: list[dict[str, str]]
    after: StoredAfterSummer | None

    @property
    def retrained(self) -> bool:
        """Sent to summer re-training: the homeroom teacher enters a new conduct result."""
        return self.outcome == Outcome.SUMMER_TRAINING


def summer_rows(school_class: SchoolClass) -> list[SummerRow]:
    """The students re-assessed or re-trained this summer, with what they retake (three queries)."""
    years = StudentYear.objects.filter(enrolment__school_class=school_class).select_related(
        "enrolment__student"
    )
    # Looked up with the subject's id, or None for a subject not in the curriculum (no retake).
    retakes: dict[tuple[int, int | None], Retake] = {
        (r.enrolment_id, r.subject_id): r for r in Retake.objects.filter(enrolment__school_class=school_class)
    }
    curriculum = {
        code: (subject_id, name)
        for code, subject_id, name in CurriculumEntry.objects.filter(
            school_year_id=school_class.school_year_id, grade=school_class.grade
        ).values_list("subject__code", "subject_id", "subject__name")
    }
    rows = []
    for year in years:
        result = student_year_result(year)
        if not isinstance(result, SecondaryResult) or result.outcome not in SUMMER_OUTCOMES:
            continue
        year_values = {s.code: s.year for s in result.subjects}
        subjects = []
        for code in student_year_retakes(year):
            subject_id, name = curriculum.get(code, (None, code))
            retake = retakes.get((year.enrolment_id, subject_id))
            value = "" if retake is None else (retake.level or display(retake.score))
            subjects.append(
                {
                    "code": code,
                    "name": name,
                    "year": str(year_values[code]).replace(".", ","),
                    "value": value,
                }
            )
        rows.append(
            SummerRow(
                year=year,
                outcome=result.outcome,
                subjects=subjects,
                after=after_summer_from_json(year.results),
            )
        )
    return rows
