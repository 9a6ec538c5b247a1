"""Closing a class's year: the principal's approval in June, and the August re-assessment.

June: the homeroom teacher has entered conduct and computed the results; the principal (or a
vice-principal) approves them, which closes the class's book. August: the students sent to
re-assessment get their subjects' re-assessment results and those sent to summer re-training a
new conduct result; the principal closes the class again and the rules decide, from the new
results, who is promoted and who repeats the grade (domain.md §3, TT22 art. 12-13).
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import School, User
from portal.progress.services import progress_changed
from portal.services import audit_record
from schools.choices import Ruleset
from schools.models import Enrolment, SchoolClass, SchoolYear, Subject

from .models import Retake, StudentYear
from .permissions import can_edit_homeroom, can_lock_terms
from .results import class_results, class_results_store
from .rules import tt43
from .rules.codec import SUMMER_OUTCOMES, StoredAfterSummer, with_after_summer
from .rules.common import CommentGrade, Rating
from .rules.reassessment import after_summer, subjects_to_retake
from .rules.tt22 import Outcome, SecondaryResult
from .selectors import student_year_outcome, student_year_result, student_year_retakes
from .services import (
    CellError,
    CellSaved,
    class_book_lock,
    display,
    parse_comment_level,
    parse_result_level,
    parse_score,
    refuse_if_changed,
)


def _year_code(school_class: SchoolClass) -> str:
    return SchoolYear.objects.values_list("code", flat=True).get(classes__pk=school_class.pk)


@transaction.atomic
def class_year_close(*, actor: User, school: School, school_class: SchoolClass) -> int:
    """The principal approves the class's year: results stored, book closed. Returns the count."""
    if not can_lock_terms(actor, school):
        raise PermissionDenied(_("Only the principal or a vice-principal approves the year."))
    school_class = SchoolClass.objects.select_for_update().get(pk=school_class.pk)
    if school_class.closed_at is not None:
        raise ValidationError(_("This class's year is already approved."))
    outcomes = class_results(school_class)
    incomplete = [o for o in outcomes if o.result is None]
    if incomplete:
        raise ValidationError(
            _("%(count)d students still miss data, e.g. %(name)s: %(missing)s.")
            % {
                "count": len(incomplete),
                "name": incomplete[0].enrolment.student.full_name,
                "missing": "; ".join(incomplete[0].missing[:3]),
            }
        )
    stored = class_results_store(school_class=school_class)
    school_class.closed_at, school_class.closed_by = timezone.now(), actor
    school_class.save(update_fields=["closed_at", "closed_by"])
    progress_changed(school_year=_year_code(school_class), school=school, parts=("books",))
    audit_record(
        actor=actor,
        action=AuditAction.CLASS_YEAR_APPROVED,
        obj=school_class,
        summary=_("Year of class %(name)s approved (%(count)d students)")
        % {"name": school_class.name, "count": stored},
        school=school,
    )
    return stored


@transaction.atomic
def summer_cell_save(
    *,
    actor: User,
    school: School,
    school_class: SchoolClass,
    enrolment_id: int,
    field: str,
    raw: str,
    expected: str | None = None,
) -> CellSaved:
    """An August cell: `retake:<subject code>` or `conduct_after_training`.

    `expected`, as for assessment_cell_save: a cell changed meanwhile raises CellConflict.
    """
    if not can_edit_homeroom(actor, school, school_class):
        raise PermissionDenied(_("Only the class's homeroom teacher enters this."))
    # Read under a share lock: the August close (FOR UPDATE) waits for this save, or it for the close.
    book = class_book_lock(school_class)
    if book.closed_at is None or book.summer_closed_at is not None:
        raise CellError(
            _("Re-assessment results are entered after the year is approved, until August's close."),
            code="not_summer",
        )
    enrolment = Enrolment.objects.filter(pk=enrolment_id, school_class=school_class).first()
    year = StudentYear.objects.filter(enrolment=enrolment).first() if enrolment else None
    outcome = student_year_outcome(year)
    if year is None or outcome not in SUMMER_OUTCOMES:
        raise CellError(_("This student is not re-assessed this summer."))
    if field == "conduct_after_training":
        if outcome != Outcome.SUMMER_TRAINING:
            raise CellError(_("This student was not sent to summer re-training."))
        conduct = parse_result_level(raw)
        year = StudentYear.objects.select_for_update().get(pk=year.pk)
        refuse_if_changed(
            old=year.conduct_after_training,
            new=conduct,
            expected=expected,
            parser=parse_result_level,
            raw=raw,
        )
        old, year.conduct_after_training = year.conduct_after_training, conduct
        year.save(update_fields=["conduct_after_training"])
        _change(actor, enrolment, None, "studentyear", year.pk, field, old, conduct)
        return CellSaved(value=conduct, changed=old != conduct)
    code = field.removeprefix("retake:")
    if not field.startswith("retake:") or code not in student_year_retakes(year):
        raise CellError(_("This subject is not re-assessed for this student."))
    subject = Subject.objects.get(code=code)
    result = cast(SecondaryResult, student_year_result(year))  # re-assessed: a TT22/TT43 result
    comment_subject = not next(s for s in result.subjects if s.code == code).scored
    retake, _created = Retake.objects.select_for_update().get_or_create(enrolment=enrolment, subject=subject)
    name = "level" if comment_subject else "score"
    parser = parse_comment_level if comment_subject else parse_score
    value = parser(raw)
    old = getattr(retake, name)
    refuse_if_changed(
        old=old,
        new=value,
        expected=expected,
        parser=parser,
        raw=raw,
    )
    setattr(retake, name, value if value is not None else ("" if comment_subject else None))
    retake.save(update_fields=[name, "updated_at"])
    _change(actor, enrolment, subject.pk, "retake", retake.pk, name, old, value)
    return CellSaved(value=display(value), changed=old != value)


def _change(actor, enrolment, subject_id, table, row_id, field, old, new) -> None:
    from .models import AssessmentChange

    if old != new:
        AssessmentChange.objects.create(
            actor=actor,
            enrolment=enrolment,
            subject_id=subject_id,
            table=table,
            row_id=row_id,
            field=field,
            old=display(old),
            new=display(new),
        )


@transaction.atomic
def class_summer_close(*, actor: User, school: School, school_class: SchoolClass) -> int:
    """August: apply the re-assessment and re-training results; the rules decide promotion."""
    if not can_lock_terms(actor, school):
        raise PermissionDenied(_("Only the principal or a vice-principal approves the year."))
    school_class = SchoolClass.objects.select_for_update().get(pk=school_class.pk)
    if school_class.closed_at is None or school_class.summer_closed_at is not None:
        raise ValidationError(_("The re-assessment can be closed once, after the year is approved."))
    min_subjects = tt43.MIN_SUBJECTS if school_class.ruleset == Ruleset.TT43 else None
    retakes: dict[int, dict[str, Decimal | CommentGrade]] = {}
    for r in Retake.objects.filter(enrolment__school_class=school_class).select_related("subject"):
        value = CommentGrade(r.level) if r.level else r.score
        if value is not None:
            retakes.setdefault(r.enrolment_id, {})[r.subject.code] = value
    decided = 0
    for outcome in class_results(school_class):
        year = outcome.year
        if outcome.raw is None or year is None or student_year_outcome(year) not in SUMMER_OUTCOMES:
            continue
        assert isinstance(outcome.raw, SecondaryResult)  # only TT22/TT43 years have these outcomes
        kwargs = {"min_subjects": min_subjects} if min_subjects else {}
        after = after_summer(
            outcome.raw,
            conduct_year=Rating(year.conduct_year),
            retakes=retakes.get(outcome.enrolment.pk, {}),
            conduct_after_training=Rating(year.conduct_after_training)
            if year.conduct_after_training
            else None,
            **kwargs,
        )
        retaken = set(subjects_to_retake(outcome.raw)) & set(retakes.get(outcome.enrolment.pk, {}))
        year.results = with_after_summer(year.results, StoredAfterSummer.of(after, retaken=sorted(retaken)))
        year.save(update_fields=["results"])
        decided += 1
    school_class.summer_closed_at = timezone.now()
    school_class.save(update_fields=["summer_closed_at"])
    progress_changed(school_year=_year_code(school_class), school=school, parts=("books",))
    audit_record(
        actor=actor,
        action=AuditAction.CLASS_SUMMER_CLOSED,
        obj=school_class,
        summary=_("Re-assessment of class %(name)s closed (%(count)d students)")
        % {"name": school_class.name, "count": decided},
        school=school,
    )
    return decided
