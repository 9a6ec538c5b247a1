"""A class's year results: the grade book's data turned into the rules' input, and the outputs.

The rules (transcripts.rules) are pure; this module reads the database once per class, builds
their dataclasses, and stores what they decide with the rule set's code, so that a result can
be recomputed and audited later (domain.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.models import School, User
from portal.progress.services import progress_changed
from schools.choices import Ruleset, SubjectKind
from schools.models import CurriculumEntry, Enrolment, SchoolClass, SchoolYear

from .choices import GENERAL_COMPETENCIES, QUALITIES, SPECIFIC_COMPETENCIES, PrimaryPeriod
from .models import PrimarySubjectAssessment, QualityAssessment, StudentYear, SubjectTermScores
from .permissions import can_edit_homeroom
from .rules import ruleset_for
from .rules.codec import result_to_json
from .rules.common import CommentGrade, Rating
from .rules.tt22 import CommentSubject, Ratings, ScoredSubject, SecondaryResult, SecondaryStudent, TermScores
from .rules.tt27 import PrimaryPupil, PrimaryResult, PrimarySubject, QualityLevel, SubjectLevel
from .selectors import active_enrolments
from .services import REGULAR_FIELDS

QUALITY_CODES = [code for code, _label in QUALITIES]
COMPETENCY_CODES = [code for code, _label in GENERAL_COMPETENCIES + SPECIFIC_COMPETENCIES]


@dataclass
class StudentOutcome:
    """One student's computed year, or what is still missing to compute it."""

    enrolment: Enrolment
    year: StudentYear | None
    missing: list[str] = field(default_factory=list)
    result: dict | None = None  # as stored in StudentYear.results (rules.codec.result_to_json)
    raw: SecondaryResult | PrimaryResult | None = None  # the rule set's own result object


def class_results(school_class: SchoolClass) -> list[StudentOutcome]:
    """Compute every student's year under the class's rule set (a fixed number of queries)."""
    enrolments = active_enrolments(school_class)
    entries = list(
        CurriculumEntry.objects.filter(school_year_id=school_class.school_year_id, grade=school_class.grade)
        .select_related("subject")
        .order_by("position")
    )
    years = {y.enrolment_id: y for y in StudentYear.objects.filter(enrolment__in=enrolments)}
    ruleset = ruleset_for(school_class.ruleset)
    if school_class.ruleset == Ruleset.TT27:
        build = _primary_builder(enrolments, entries)
    else:
        build = _secondary_builder(enrolments, entries, years)
    outcomes = []
    for enrolment in enrolments:
        outcome = StudentOutcome(enrolment=enrolment, year=years.get(enrolment.pk))
        data = build(enrolment, outcome.missing)
        if not outcome.missing:
            outcome.raw = ruleset.evaluate(data)
            outcome.result = result_to_json(outcome.raw)
        outcomes.append(outcome)
    return outcomes


def _secondary_builder(enrolments, entries, years):
    rows = {
        (r.enrolment_id, r.subject_id, r.term): r
        for r in SubjectTermScores.objects.filter(enrolment__in=enrolments)
    }

    def build(enrolment: Enrolment, missing: list[str]) -> SecondaryStudent | None:
        subjects: list[ScoredSubject | CommentSubject] = []
        for entry in entries:
            scores: list[TermScores] = []  # a scored subject's terms
            grades: list[CommentGrade] = []  # a comment-only subject's terms
            for term in (1, 2):
                row = rows.get((enrolment.pk, entry.subject_id, term))
                label = _("%(subject)s, term %(term)s") % {
                    "subject": entry.subject.name,
                    "term": "I" if term == 1 else "II",
                }
                if entry.kind == SubjectKind.SCORED:
                    regular = (
                        [getattr(row, f) for f in REGULAR_FIELDS[: entry.regular_count]] if row else [None]
                    )
                    if row is None or row.mid is None or row.end is None or None in regular:
                        missing.append(label)
                        continue
                    scores.append(TermScores(regular=tuple(regular), mid=row.mid, end=row.end))
                else:
                    if row is None or not row.level:
                        missing.append(label)
                        continue
                    grades.append(CommentGrade(row.level))
            if len(scores) == 2:
                subjects.append(ScoredSubject(code=entry.subject.code, term1=scores[0], term2=scores[1]))
            elif len(grades) == 2:
                subjects.append(CommentSubject(code=entry.subject.code, term1=grades[0], term2=grades[1]))
        year = years.get(enrolment.pk)
        conduct = [
            getattr(year, f, "") if year else "" for f in ("conduct_term1", "conduct_term2", "conduct_year")
        ]
        if "" in conduct:
            missing.append(_("conduct"))
        if missing:
            return None
        return SecondaryStudent(
            subjects=tuple(subjects),
            conduct=Ratings(*(Rating(c) for c in conduct)),
            absences=year.absences,
        )

    return build


def _primary_builder(enrolments, entries):
    levels = {
        (r.enrolment_id, r.subject_id): r
        for r in PrimarySubjectAssessment.objects.filter(enrolment__in=enrolments, period=PrimaryPeriod.END2)
    }
    qualities = {
        (q.enrolment_id, q.code): q.level
        for q in QualityAssessment.objects.filter(enrolment__in=enrolments, period=PrimaryPeriod.END2)
    }

    def build(enrolment: Enrolment, missing: list[str]) -> PrimaryPupil | None:
        subjects = []
        for entry in entries:
            row = levels.get((enrolment.pk, entry.subject_id))
            if row is None or not row.level or (entry.has_test and row.test_score is None):
                missing.append(entry.subject.name)
                continue
            subjects.append(
                PrimarySubject(
                    code=entry.subject.code,
                    level=SubjectLevel(row.level),
                    test_score=row.test_score if entry.has_test else None,
                )
            )
        found = {code: qualities.get((enrolment.pk, code)) for code in QUALITY_CODES + COMPETENCY_CODES}
        if not all(found.values()):
            missing.append(_("qualities and competencies"))
        if missing:
            return None
        return PrimaryPupil(
            subjects=tuple(subjects),
            qualities={c: QualityLevel(found[c]) for c in QUALITY_CODES},
            competencies={c: QualityLevel(found[c]) for c in COMPETENCY_CODES},
        )

    return build


@transaction.atomic
def class_results_store(*, school_class: SchoolClass) -> int:
    """Compute and store the class's results (with the rule set's code); returns how many.

    Only while the class's book is open: once the principal has approved the year, the stored
    results (and the August re-assessment's decision added to them) are final, and computing
    again would replace them (issue 9, finding 1). The class row is locked for the whole run, so
    an approval waits for it and no cell save lands between the reading and the storing.
    """
    locked = SchoolClass.objects.select_for_update(no_key=True).get(pk=school_class.pk)
    if locked.closed_at is not None:
        raise ValidationError(
            _(
                "The principal has approved this class's year: its results are final and are "
                "not computed again."
            ),
            code="class_closed",
        )
    stored = 0
    now = timezone.now()
    for outcome in class_results(school_class):
        if outcome.result is None:
            continue
        year = outcome.year or StudentYear.objects.create(enrolment=outcome.enrolment)
        year.ruleset, year.results, year.computed_at = school_class.ruleset, outcome.result, now
        year.save(update_fields=["ruleset", "results", "computed_at"])
        stored += 1
    progress_changed(
        school_year=SchoolYear.objects.values_list("code", flat=True).get(classes__pk=school_class.pk),
        parts=("books",),
    )
    return stored


@transaction.atomic
def class_results_compute(*, actor: User, school: School, school_class: SchoolClass) -> int:
    """The homeroom teacher computes the class's year results (before the principal approves)."""
    if not can_edit_homeroom(actor, school, school_class):
        raise PermissionDenied(_("Only the class's homeroom teacher computes its results."))
    return class_results_store(school_class=school_class)
