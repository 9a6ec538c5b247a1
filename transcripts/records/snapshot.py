"""The snapshot: a student's year as the school's book holds it *now*, as the document's dataclasses.

Everything the record shows is copied here (names, codes, titles, the signers expected), so a
later change to a student, a teacher or the school never reaches an existing record: the record
keeps its bytes, and only a correction (a new version) takes a new snapshot.

A class is read at once (a fixed number of queries whatever its size): `class_snapshots` loads
the book, then builds one YearRecord per enrolment asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.choices import Role
from portal.models import Department, RoleAssignment, School
from schools.choices import Ruleset
from schools.models import CurriculumEntry, Enrolment, SchoolClass, TeachingAssignment
from transcripts.choices import GENERAL_COMPETENCIES, QUALITIES, SPECIFIC_COMPETENCIES, PrimaryPeriod
from transcripts.document import (
    Issuer,
    PrimaryPart,
    PrimarySubjectRow,
    QualityRow,
    Ratings,
    SecondaryPart,
    SecondarySubjectRow,
    Signers,
    StudentIdentity,
    StudyHistoryLine,
    Supersedes,
    YearRecord,
    year_record_id,
)
from transcripts.models import (
    PrimarySubjectAssessment,
    QualityAssessment,
    Retake,
    StudentYear,
    SubjectTermScores,
)
from transcripts.rules.codec import SUMMER_OUTCOMES, CodecError, after_summer_from_json
from transcripts.rules.tt22 import Outcome, SecondaryResult
from transcripts.rules.tt27 import PrimaryResult
from transcripts.selectors import student_year_outcome, student_year_result

# The principal's title as printed under the signature (chucvugiamhieu). A vice-principal
# signing on the principal's behalf ("KT. Hiệu trưởng / Phó Hiệu trưởng") is recorded by the
# signing step, which knows who actually signs.
PRINCIPAL_TITLE = "Hiệu trưởng"
LAST_GRADES = (9, 12)  # completing THCS / THPT


def class_level(school_class: SchoolClass) -> str:
    """macaphoc: the level the class's grade and rule set belong to."""
    if school_class.ruleset == Ruleset.TT43:
        return "continuing"
    if school_class.grade <= 5:
        return "primary"
    return "lower_secondary" if school_class.grade <= 9 else "upper_secondary"


def results_are_final(year: StudentYear | None, school_class: SchoolClass) -> bool:
    """The year's results are decided: approved, and for the summer cases closed in August."""
    if year is None or not year.results or school_class.closed_at is None:
        return False
    # Outcomes decided only in August: their records wait for the summer close.
    if student_year_outcome(year) in SUMMER_OUTCOMES:
        return school_class.summer_closed_at is not None
    return True


@dataclass
class _Book:
    """One class's book, loaded once: everything the snapshots of its students need."""

    school: School
    school_class: SchoolClass
    issuer: Issuer
    signers: Signers
    entries: list[CurriculumEntry]
    years: dict[int, StudentYear]
    teachers: dict[int, str] = field(default_factory=dict)
    scores: dict[tuple[int, int, int], SubjectTermScores] = field(default_factory=dict)
    retakes: dict[tuple[int, int], Retake] = field(default_factory=dict)
    primary: dict[tuple[int, int], PrimarySubjectAssessment] = field(default_factory=dict)
    qualities: dict[tuple[int, str], QualityAssessment] = field(default_factory=dict)


def _issuer_and_signers(school: School, school_class: SchoolClass) -> tuple[Issuer, Signers]:
    department = Department.objects.get()
    if not department.place_name:
        raise ValidationError(_("The department has no place of issue; set it before creating records."))
    principal = (
        RoleAssignment.objects.current()
        .filter(role=Role.PRINCIPAL, school_id=school.pk)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if principal is None:
        raise ValidationError(_("The school has no principal to sign its records."))
    if school_class.homeroom_teacher is None:
        raise ValidationError(_("The class has no homeroom teacher to sign its records."))
    issuer = Issuer(
        department_code=department.code,
        department_name=department.name,
        school_code=school.code,
        school_name=school.name,
        place_of_issue=department.place_name,
    )
    signers = Signers(
        homeroom_teacher=school_class.homeroom_teacher.get_full_name(),
        principal=principal.user.get_full_name(),
        principal_title=PRINCIPAL_TITLE,
        seal=school.name,
    )
    return issuer, signers


def _load(school: School, school_class: SchoolClass, enrolments: list[Enrolment]) -> _Book:
    school_class = SchoolClass.objects.select_related("school_year", "homeroom_teacher").get(
        pk=school_class.pk
    )
    issuer, signers = _issuer_and_signers(school, school_class)
    entries = list(
        CurriculumEntry.objects.filter(school_year_id=school_class.school_year_id, grade=school_class.grade)
        .select_related("subject")
        .order_by("position")
    )
    book = _Book(
        school=school,
        school_class=school_class,
        issuer=issuer,
        signers=signers,
        entries=entries,
        years={y.enrolment_id: y for y in StudentYear.objects.filter(enrolment__in=enrolments)},
    )
    if school_class.ruleset == Ruleset.TT27:
        book.primary = {
            (r.enrolment_id, r.subject_id): r
            for r in PrimarySubjectAssessment.objects.filter(
                enrolment__in=enrolments, period=PrimaryPeriod.END2
            )
        }
        book.qualities = {
            (q.enrolment_id, q.code): q
            for q in QualityAssessment.objects.filter(enrolment__in=enrolments, period=PrimaryPeriod.END2)
        }
    else:
        book.scores = {
            (r.enrolment_id, r.subject_id, r.term): r
            for r in SubjectTermScores.objects.filter(enrolment__in=enrolments)
        }
        book.retakes = {
            (r.enrolment_id, r.subject_id): r for r in Retake.objects.filter(enrolment__in=enrolments)
        }
        book.teachers = {
            a.subject_id: a.teacher.get_full_name()
            for a in TeachingAssignment.objects.filter(school_class=school_class).select_related("teacher")
        }
    return book


def _criteria(book: _Book, enrolment: Enrolment, catalogue: list) -> tuple[QualityRow, ...]:
    rows = []
    for code, label in catalogue:
        found = book.qualities.get((enrolment.pk, code))
        if found is None or not found.level:
            raise ValidationError(
                _("%(name)s has no end-of-year level for %(criterion)s.")
                % {
                    "name": enrolment.student.full_name,
                    "criterion": str(label),
                }
            )
        rows.append(QualityRow(code=code, name=str(label), level=found.level, comment=found.comment))
    return tuple(rows)


def _primary_part(book: _Book, enrolment: Enrolment, year: StudentYear) -> PrimaryPart:
    subjects = []
    for entry in book.entries:
        row = book.primary.get((enrolment.pk, entry.subject_id))
        subjects.append(
            PrimarySubjectRow(
                code=entry.subject.code,
                name=entry.subject.name,
                level=(row.level or None) if row else None,
                test_score=row.test_score if row and entry.has_test else None,
                comment=row.comment if row else "",
            )
        )
    stored = student_year_result(year)
    if not isinstance(stored, PrimaryResult):  # a TT27 class stores TT27 results (results.py)
        raise CodecError(f"year {year.pk}: stored results are not a primary result")
    completed = stored.completed
    return PrimaryPart(
        subjects=tuple(subjects),
        qualities=_criteria(book, enrolment, QUALITIES),
        general_competencies=_criteria(book, enrolment, GENERAL_COMPETENCIES),
        specific_competencies=_criteria(book, enrolment, SPECIFIC_COMPETENCIES),
        result=str(stored.result),
        completed_grade=completed,
        completed_primary=completed if book.school_class.grade == 5 else None,
        awards=(year.award_proposal,) if year.award_proposal else (),
    )


def _secondary_part(book: _Book, enrolment: Enrolment, year: StudentYear) -> SecondaryPart:
    result = student_year_result(year)
    if not isinstance(result, SecondaryResult):  # a TT22/TT43 class stores their results
        raise CodecError(f"year {year.pk}: stored results are not a secondary result")
    after = after_summer_from_json(year.results)
    retaken = set(after.retaken) if after else set()
    values = {s.code: s for s in result.subjects}
    subjects = []
    for entry in book.entries:
        code = entry.subject.code
        value = values.get(code)
        retake = book.retakes.get((enrolment.pk, entry.subject_id)) if code in retaken else None
        term2 = book.scores.get((enrolment.pk, entry.subject_id, 2))
        subjects.append(
            SecondarySubjectRow(
                code=code,
                name=entry.subject.name,
                term1=str(value.term1) if value else None,
                term2=str(value.term2) if value else None,
                year=str(value.year) if value else None,
                after_reassessment=(retake.level or retake.score) if retake else None,
                comment=term2.comment if term2 else "",
                teacher=book.teachers.get(entry.subject_id, ""),
            )
        )
    outcome = result.outcome
    final = after.outcome if after else outcome
    learning = result.learning
    promoted = final == Outcome.PROMOTED
    return SecondaryPart(
        subjects=tuple(subjects),
        conduct=Ratings(
            year.conduct_term1,
            year.conduct_term2,
            year.conduct_year,
            after_reassessment=str(after.conduct_year)
            if after and outcome == Outcome.SUMMER_TRAINING
            else None,
        ),
        learning=Ratings(
            str(learning.term1),
            str(learning.term2),
            str(learning.year),
            after_reassessment=str(after.learning_year)
            if after and outcome == Outcome.REASSESSMENT
            else None,
        ),
        absences=year.absences,
        promoted=promoted,
        outcome=str(outcome),
        homeroom_comment=year.homeroom_comment,
        completed_level=promoted if book.school_class.grade in LAST_GRADES else None,
        title=str(result.title) if result.title else None,
        awards=(year.award_proposal,) if year.award_proposal else (),
    )


def _snapshot(
    book: _Book, enrolment: Enrolment, *, version: int, supersedes: Supersedes | None, today: dt.date
) -> YearRecord:
    school_class, student = book.school_class, enrolment.student
    year = book.years.get(enrolment.pk)
    if not results_are_final(year, school_class):
        raise ValidationError(
            _("The year's results of %(name)s are not final yet.") % {"name": student.full_name}
        )
    assert year is not None  # for mypy: results_are_final said so
    part = (
        _primary_part(book, enrolment, year)
        if school_class.ruleset == Ruleset.TT27
        else _secondary_part(book, enrolment, year)
    )
    school_year = school_class.school_year.code
    return YearRecord(
        record_id=year_record_id(
            school_code=book.school.code, student_code=student.student_code, school_year=school_year
        ),
        version=version,
        supersedes=supersedes,
        issuer=book.issuer,
        issued_on=today,
        level=class_level(school_class),
        school_year=school_year,
        grade=school_class.grade,
        class_name=school_class.name,
        ruleset=school_class.ruleset,
        student=StudentIdentity(
            student_code=student.student_code,
            full_name=student.full_name,
            sex=student.sex,
            date_of_birth=student.date_of_birth,
            personal_id=student.personal_id,
            temporary_code=student.temporary_code,
            # The book keeps the number only once verified (schools.Student), else a temporary code.
            personal_id_verified=bool(student.personal_id),
            place_of_birth=student.place_of_birth,
            ethnicity=student.ethnicity,
            nationality=student.nationality,
            home_town=student.home_town,
            current_address=student.current_address,
            father_name=student.father_name,
            mother_name=student.mother_name,
            guardian_name=student.guardian_name,
            policy_category=student.policy_category,
            disability_exempt=student.disability_exempt,
        ),
        history=StudyHistoryLine(
            school_year=school_year,
            class_name=school_class.name,
            school_name=book.school.name,
            enrolled_on=enrolment.enrolled_on,
        ),
        part=part,
        signers=book.signers,
    )


def class_snapshots(
    *,
    school: School,
    school_class: SchoolClass,
    enrolments: Iterable[Enrolment],
    versions: dict[int, tuple[int, Supersedes | None]] | None = None,
) -> dict[int, YearRecord]:
    """The snapshot of each enrolment given (its student selected), by enrolment id.

    `versions` gives, per enrolment id, the version to build and the version it supersedes
    (default: version 1, superseding nothing). Raises ValidationError when something the record
    must show is missing. The document is written in Vietnamese whatever the request's language:
    the names of qualities and competencies come from the Vietnamese catalogue.
    """
    enrolments = list(enrolments)
    versions = versions or {}
    today = timezone.localdate()
    with translation.override("vi"):
        book = _load(school, school_class, enrolments)
        snapshots = {}
        for enrolment in enrolments:
            version, supersedes = versions.get(enrolment.pk, (1, None))
            snapshots[enrolment.pk] = _snapshot(
                book, enrolment, version=version, supersedes=supersedes, today=today
            )
        return snapshots


def year_record_snapshot(
    *, school: School, enrolment: Enrolment, version: int = 1, supersedes: Supersedes | None = None
) -> YearRecord:
    """One enrolment's year record as the book holds it now (see class_snapshots)."""
    enrolment = Enrolment.objects.select_related("student", "school_class").get(pk=enrolment.pk)
    return class_snapshots(
        school=school,
        school_class=enrolment.school_class,
        enrolments=[enrolment],
        versions={enrolment.pk: (version, supersedes)},
    )[enrolment.pk]
