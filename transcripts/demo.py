"""A demo school's year of assessments: scores, levels, comments, conduct, qualities, absences.

`make run` seeds each demo school through registry/demo.py, which calls school_demo_seed here:
schools.demo makes the classes, teachers and students (with hidden traits: ability, manner, the
weak and the absent), then this module fills the 2025-2026 year's assessments from those traits
with the same random generator, so the demo is what it was when one module made both: TT22/TT43
scores and TT27 levels for both terms, a few weak students (re-assessment, one subject below 3.5),
one student over the 45-absence limit.

Initial data, not edits: bulk-inserted, no AssessmentChange rows. The comments are data, not
interface text: they are not translated.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models, transaction

from portal.models import School, User
from portal.progress.services import progress_changed
from schools.choices import SubjectKind
from schools.demo import YEAR_CODE, Learner, Roster, school_roster_seed
from schools.models import Enrolment, SchoolClass

from .choices import (
    GENERAL_COMPETENCIES,
    QUALITIES,
    SPECIFIC_COMPETENCIES,
    CommentLevel,
    PrimaryLevel,
    PrimaryPeriod,
    QualityLevel,
    ResultLevel,
)
from .demo_data import (
    COMMENT_SUBJECT_COMMENTS,
    PRIMARY_COMMENTS,
    PRIMARY_SUBJECT_COMMENTS,
    PRIMARY_YEAR_COMMENTS,
    QUALITY_COMMENTS,
    SCORED_COMMENTS,
    SECONDARY_YEAR_COMMENTS,
)
from .models import (
    PrimarySubjectAssessment,
    QualityAssessment,
    StudentYear,
    SubjectTermScores,
    YearRecord,
    YearRecordStatus,
)
from .records.services import year_record_confirm, year_records_create
from .rules.tt22 import TermScores, term_average
from .yearclose import class_year_close

__all__ = ["YEAR_CODE", "school_demo_seed", "year_assessments_seed"]


def school_demo_seed(
    school: School, users_by_username: dict[str, User], *, students_per_class: int | None = None
) -> None:
    """Seed the school's 2025-2026 year at its close; do nothing if the year already has classes.

    The roster (schools.demo.school_roster_seed: classes, teachers, students) and the year's
    assessments, in the school's schema, in one transaction. users_by_username and
    students_per_class: as for school_roster_seed.
    """
    with school, transaction.atomic():
        roster = school_roster_seed(school, users_by_username, students_per_class=students_per_class)
        if roster is not None:
            year_assessments_seed(roster)
            # Seeded in bulk, past the services: the year's progress row is counted once here.
            progress_changed(school_year=YEAR_CODE, school=school)


def year_assessments_seed(roster: Roster) -> None:
    """Fill the assessments of a newly seeded roster's year (both terms, the year's results)."""
    rows = _assessments(roster.rng, roster.classes, roster.learners, roster.enrolments, roster.curriculum)
    # Initial data, not edits: no AssessmentChange rows. The audit trail starts with the first
    # change a user makes in the grade book.
    for model, objs in rows.items():
        model._default_manager.bulk_create(objs, batch_size=2000)


def _assessments(rng, classes, learners, enrolments, curriculum) -> dict[type[models.Model], list]:
    rows: dict[type[models.Model], list] = {
        SubjectTermScores: [],
        PrimarySubjectAssessment: [],
        QualityAssessment: [],
        StudentYear: [],
    }
    for school_class, class_learners, class_enrolments in zip(classes, learners, enrolments, strict=True):
        entries = curriculum.get(school_class.grade, [])
        primary = school_class.grade <= 5
        for learner, enrolment in zip(class_learners, class_enrolments, strict=True):
            for entry in entries:
                learner.aptitude[entry.subject.code] = rng.gauss(0, 0.35 if primary else 0.6)
            if primary:
                rows[PrimarySubjectAssessment] += _primary_subjects(rng, learner, enrolment, entries)
                rows[QualityAssessment] += _qualities(rng, learner, enrolment)
                rows[StudentYear].append(_primary_year(rng, learner, enrolment))
            else:
                rows[SubjectTermScores] += _secondary_subjects(rng, learner, enrolment, entries)
                rows[StudentYear].append(_secondary_year(rng, learner, enrolment))
    return rows


PERIODS = [PrimaryPeriod.MID1, PrimaryPeriod.END1, PrimaryPeriod.MID2, PrimaryPeriod.END2]


def _primary_subjects(rng, learner: Learner, enrolment: Enrolment, entries) -> list[PrimarySubjectAssessment]:
    rows = []
    for entry in entries:
        code = entry.subject.code
        for step, period in enumerate(PERIODS):
            # Pupils progress a little through the year.
            latent = learner.ability + learner.aptitude[code] + 0.1 * step + rng.gauss(0, 0.3)
            level = PrimaryLevel.T if latent >= 7.5 else PrimaryLevel.H if latent >= 5.0 else PrimaryLevel.C
            tested = entry.has_test and (
                period in (PrimaryPeriod.END1, PrimaryPeriod.END2) or entry.has_mid_test
            )
            score = None
            if tested:
                score = min(max(round(latent + rng.gauss(0, 0.6)), 1), 10)
                # The test and the level agree as a teacher's would: T from 7, H 5-9, C below 5.
                score = {PrimaryLevel.T: max(score, 7), PrimaryLevel.H: min(max(score, 5), 9)}.get(
                    level, min(score, 4)
                )
            comments = PRIMARY_SUBJECT_COMMENTS.get((code, level), []) + PRIMARY_COMMENTS[level]
            rows.append(
                PrimarySubjectAssessment(
                    enrolment=enrolment,
                    subject=entry.subject,
                    period=period,
                    level=level,
                    test_score=score,
                    comment=rng.choice(comments),
                )
            )
    return rows


QUALITY_GROUPS = [
    ("qualities", [code for code, _label in QUALITIES]),
    ("general", [code for code, _label in GENERAL_COMPETENCIES]),
    ("specific", [code for code, _label in SPECIFIC_COMPETENCIES]),
]


def _qualities(rng, learner: Learner, enrolment: Enrolment) -> list[QualityAssessment]:
    rows = []
    for period in (PrimaryPeriod.END1, PrimaryPeriod.END2):
        for group, codes in QUALITY_GROUPS:
            for code in codes:
                roll = rng.random()
                if roll < learner.manner:
                    level = QualityLevel.T
                elif learner.weak and roll > 0.85:
                    level = QualityLevel.C
                else:
                    level = QualityLevel.D
                rows.append(
                    QualityAssessment(
                        enrolment=enrolment,
                        code=code,
                        period=period,
                        level=level,
                        comment=rng.choice(QUALITY_COMMENTS[group][level]),
                    )
                )
    return rows


def _primary_year(rng, learner: Learner, enrolment: Enrolment) -> StudentYear:
    kind = "weak" if learner.weak else "strong" if learner.ability >= 8.5 else "average"
    return StudentYear(
        enrolment=enrolment,
        absences=rng.choice([0, 0, 0, 1, 1, 2, 3, 4, 6]),
        homeroom_comment=rng.choice(PRIMARY_YEAR_COMMENTS[kind]),
    )


def _score(rng, mean: float, *, regular: bool) -> Decimal:
    """A score around mean, 0-10 with one decimal; regular scores are mostly whole or halves."""
    value = min(max(rng.gauss(mean, 0.8), 0.0), 10.0)
    roll = rng.random()
    if roll < (0.55 if regular else 0.2):
        value = round(value)
    elif roll < (0.8 if regular else 0.45):
        value = round(value * 2) / 2
    return Decimal(f"{min(max(value, 0.0), 10.0):.1f}")


def _secondary_subjects(rng, learner: Learner, enrolment: Enrolment, entries) -> list[SubjectTermScores]:
    rows = []
    progress = rng.gauss(0.15, 0.3)  # term II against term I
    for entry in entries:
        code = entry.subject.code
        for term in (1, 2):
            row = SubjectTermScores(enrolment=enrolment, subject=entry.subject, term=term)
            if entry.kind == SubjectKind.SCORED:
                mean = min(learner.ability + learner.aptitude[code] + (progress if term == 2 else 0), 9.7)
                regular = [_score(rng, mean, regular=True) for _i in range(entry.regular_count)]
                for index, value in enumerate(regular, start=1):
                    setattr(row, f"regular_{index}", value)
                row.mid = _score(rng, mean, regular=False)
                row.end = _score(rng, mean, regular=False)
                average = term_average(TermScores(regular=tuple(regular), mid=row.mid, end=row.end))
                row.comment = rng.choice(next(texts for floor, texts in SCORED_COMMENTS if average >= floor))
            else:
                failing = learner.weak and rng.random() < (0.2 if term == 1 else 0.1)
                row.level = CommentLevel.CD if failing else CommentLevel.D
                row.comment = rng.choice(COMMENT_SUBJECT_COMMENTS[row.level])
            rows.append(row)
    return rows


def _conduct(rng, manner: float) -> str:
    roll = rng.random()
    if roll < manner:
        return ResultLevel.T
    if roll < manner + (1 - manner) * 0.8:
        return ResultLevel.K
    return ResultLevel.D


def _secondary_year(rng, learner: Learner, enrolment: Enrolment) -> StudentYear:
    term1, term2 = _conduct(rng, learner.manner), _conduct(rng, min(learner.manner + 0.05, 1.0))
    if learner.absent:
        absences, kind = 50, "absent"
    else:
        absences = rng.choice([0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10])
        kind = "weak" if learner.weak else "strong" if learner.ability >= 8.3 else "average"
    return StudentYear(
        enrolment=enrolment,
        conduct_term1=term1,
        conduct_term2=term2,
        # The year's conduct follows term II, the homeroom teacher's usual reading of TT22.
        conduct_year=term2,
        absences=absences,
        homeroom_comment=rng.choice(SECONDARY_YEAR_COMMENTS[kind]),
    )


# --- Vietnamese alphabetical order ------------------------------------------------------------------


def class_records_confirm_seed(
    *, school: School, school_class: SchoolClass, principal: User | None, teacher: User
) -> bool:
    """What a homeroom teacher has done before signing: the year closed (by the principal), the
    class's records made and confirmed. False, and nothing done, when the class is still open and
    either someone made records by hand or there is no principal to close it."""
    records = YearRecord.objects.filter(enrolment__school_class=school_class, version=1)
    if school_class.closed_at is None:
        if records.exists() or principal is None:
            return False
        class_year_close(actor=principal, school=school, school_class=school_class)
        school_class.refresh_from_db()
    year_records_create(actor=teacher, school=school, school_class=school_class)
    for record in records.filter(status=YearRecordStatus.DATA_COMPLETE):
        year_record_confirm(actor=teacher, school=school, record=record)
    return True
