"""Writes to the grade book: one cell at a time, checked, locked, audited (style.md rules 9-11)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.formats import number_vi
from portal.models import School, User
from portal.services import audit_record
from schools.choices import Ruleset, SubjectKind
from schools.models import CurriculumEntry, Enrolment, SchoolClass, Term

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
from .models import (
    AssessmentChange,
    PrimarySubjectAssessment,
    QualityAssessment,
    StudentYear,
    SubjectTermScores,
)
from .permissions import assigned_teacher_id, can_edit_homeroom, can_edit_subject, can_lock_terms
from .rules.tt22 import TermScores, term_average

REGULAR_FIELDS = ("regular_1", "regular_2", "regular_3", "regular_4")
PERIOD_TERM: dict[str, int] = {
    PrimaryPeriod.MID1: 1,
    PrimaryPeriod.END1: 1,
    PrimaryPeriod.MID2: 2,
    PrimaryPeriod.END2: 2,
}
QUALITY_AND_COMPETENCY_CODES = frozenset(
    code for code, _label in QUALITIES + GENERAL_COMPETENCIES + SPECIFIC_COMPETENCIES
)
HOMEROOM_FIELDS = {
    "conduct_term1": 1,
    "conduct_term2": 2,
    "conduct_year": 2,
    "absences": 2,
    "homeroom_comment": 2,
    "award_proposal": 2,
}


class CellError(ValidationError):
    """A value the grade book refuses, with a message for the teacher (in the active language)."""


class CellConflict(Exception):
    """The cell changed on the server since the teacher read it: nothing was written.

    The grade book sends, with each value, the value the cell showed before the edit (`expected`).
    An edit typed offline and sent later meets whatever was saved meanwhile (by a co-teacher, or
    by the same teacher on another device); overwriting it silently would lose a score nobody sees
    again, so the teacher chooses: resend with `expected` = `current` to keep theirs, or take
    `current`.
    """

    def __init__(self, *, current: str, yours: str) -> None:
        self.current = current
        self.yours = yours
        super().__init__(
            _("This cell was changed to “%(current)s” while your change was waiting to be sent.")
            % {"current": current or _("(empty)")}
        )


def refuse_if_changed(*, old, new, expected: str | None, parser, raw: str) -> None:
    """Compare-and-set, under the caller's row lock: raise CellConflict when the stored value is
    neither what the teacher saw (`expected`, parsed as the field parses input) nor already the
    new value (a repeat of an edit whose answer was lost is not a conflict). No `expected`: no check.

    An `expected` the parser refuses (a tampered page, or a field whose rules changed) can be no
    stored value: it is a conflict, never a blind write.
    """
    if expected is None or old == new:
        return
    try:
        seen = parser(expected)
    except CellError:
        raise CellConflict(current=display(old), yours=raw.strip()) from None
    if old != seen:
        raise CellConflict(current=display(old), yours=raw.strip())


@dataclass(frozen=True)
class Cell:
    """One editable cell: a student (enrolment), a subject or none (homeroom fields), a term or
    period, and a field."""

    enrolment_id: int
    field: str
    subject_id: int | None = None
    term: int | None = None  # TT22/TT43 subject rows
    period: str | None = None  # TT27 rows


@dataclass(frozen=True)
class CellSaved:
    value: str  # as the grade book shows it
    changed: bool
    average: str | None = None  # the row's recomputed term average, when it has one
    # When the row was last written: saves of one row are serialised by its lock, so the page
    # keeps the average of the newest version when responses arrive out of order.
    version: str = ""


# --- Parsing ---------------------------------------------------------------------------------


# ASCII digits only: `\d` also matches Arabic-Indic (٧), full-width (７) and other scripts' digits,
# which Decimal() and int() accept, so a score typed in another alphabet would be stored silently.
def parse_score(raw: str) -> Decimal | None:
    """0-10 with at most one decimal; a comma is accepted as the decimal mark (7,5)."""
    text = raw.strip().replace(",", ".")
    if text == "":
        return None
    if not re.fullmatch(r"[0-9]{1,2}(\.[0-9])?", text) or Decimal(text) > 10:
        raise CellError(_("A score is a number from 0 to 10 with at most one decimal, e.g. 7,5."))
    return Decimal(text)


def parse_test_score(raw: str) -> int | None:
    text = raw.strip()
    if text == "":
        return None
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= 10:
        raise CellError(_("A periodic test score is a whole number from 1 to 10."))
    return int(text)


def _parse_choice(raw: str, allowed: list[str], aliases: dict[str, str], message: str) -> str:
    text = raw.strip().upper()
    text = aliases.get(text, text)
    if text == "":
        return ""
    if text not in allowed:
        raise CellError(message)
    return text


def parse_comment_level(raw: str) -> str:
    return _parse_choice(
        raw, CommentLevel.values, {"D": "Đ", "CD": "CĐ"}, _("Enter Đ (pass) or CĐ (not passed).")
    )


def parse_result_level(raw: str) -> str:
    return _parse_choice(raw, ResultLevel.values, {"D": "Đ", "CD": "CĐ"}, _("Enter T, K, Đ or CĐ."))


def parse_primary_level(raw: str) -> str:
    return _parse_choice(raw, PrimaryLevel.values, {}, _("Enter T, H or C."))


def parse_quality_level(raw: str) -> str:
    return _parse_choice(raw, QualityLevel.values, {"D": "Đ"}, _("Enter T, Đ or C."))


def parse_comment(raw: str) -> str:
    text = raw.strip()
    if len(text) > 500:
        raise CellError(_("A comment has at most 500 characters."), code="too_long")
    return text


HOMEROOM_COMMENT_MAX = 2000


def parse_homeroom_comment(raw: str) -> str:
    """The homeroom teacher's comment on the year: longer than a subject's, but bounded."""
    text = raw.strip()
    if len(text) > HOMEROOM_COMMENT_MAX:
        raise CellError(
            _("The homeroom teacher's comment has at most %(max)d characters (this one has %(count)d).")
            % {"max": HOMEROOM_COMMENT_MAX, "count": len(text)},
            code="too_long",
        )
    return text


def parse_absences(raw: str) -> int:
    text = raw.strip() or "0"
    if not re.fullmatch(r"[0-9]{1,3}", text):
        raise CellError(_("Absences are a whole number of sessions."))
    return int(text)


def display(value) -> str:
    """A cell's value as the grade book shows it: a score with one decimal and a comma ("7,0")."""
    if isinstance(value, Decimal):
        return number_vi(value, places=1)
    return "" if value is None else str(value)


# --- Saving ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookState:
    """A class's approval and August close as committed, read under a share lock."""

    closed_at: object
    summer_closed_at: object


def class_book_lock(school_class: SchoolClass) -> BookState:
    """Read the class's approval state FOR SHARE, inside the caller's transaction.

    The principal's approval and the August close take the class row FOR UPDATE; a write that
    checks the book through this waits for them (and then sees them), and they wait for it, so a
    save that read the class before the approval cannot commit after it (issue 9, finding 3).
    Saves of one class share the lock and do not wait for each other. Django has no FOR SHARE.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT closed_at, summer_closed_at FROM schools_schoolclass WHERE id = %s FOR SHARE",
            [school_class.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise CellError(_("This class no longer exists."), code="no_class")
    return BookState(closed_at=row[0], summer_closed_at=row[1])


def _term_locked(school_class: SchoolClass, term: int) -> bool:
    """Whether the term is locked, read FOR SHARE: a concurrent lock by the principal waits for
    this save, or this save for it (term_lock_set takes the term row FOR UPDATE)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT locked_at FROM schools_term WHERE school_year_id = %s AND number = %s FOR SHARE",
            [school_class.school_year_id, term],
        )
        row = cursor.fetchone()
    return row is not None and row[0] is not None


def refuse_if_closed(school_class: SchoolClass) -> BookState:
    """Lock the class's book state and refuse if the principal has approved its year."""
    book = class_book_lock(school_class)
    if book.closed_at is not None:
        raise CellError(
            _("The principal has approved this class's year: its book is closed."), code="class_closed"
        )
    return book


def _refuse_if_locked(school_class: SchoolClass, term: int) -> None:
    refuse_if_closed(school_class)
    if _term_locked(school_class, term):
        raise CellError(
            _("Term %(term)s is locked. Ask the principal to unlock it.")
            % {"term": "I" if term == 1 else "II"},
            code="term_locked",
        )


def row_average(row: SubjectTermScores, regular_count: int) -> Decimal | None:
    """The term average once every score of the row is in (TT22: ĐTBmhk, rounded half up)."""
    regular = [getattr(row, name) for name in REGULAR_FIELDS[:regular_count]]
    if row.mid is None or row.end is None or any(v is None for v in regular):
        return None
    return term_average(TermScores(regular=tuple(regular), mid=row.mid, end=row.end))


@transaction.atomic
def assessment_cell_save(
    *,
    actor: User,
    school: School,
    school_class: SchoolClass,
    cell: Cell,
    raw: str,
    expected: str | None = None,
) -> CellSaved:
    """Validate and save one grade-book cell; audit the change. Refusals raise CellError
    (a bad value, a locked term) or PermissionDenied (not this user's cell).

    `expected` is the value the cell showed before the edit (the grade book always sends it):
    when the stored value is neither that nor already the new value, CellConflict, nothing written.
    """
    enrolment = Enrolment.objects.filter(pk=cell.enrolment_id, school_class=school_class).first()
    if enrolment is None:
        raise CellError(_("This student is not in this class."))
    if cell.subject_id is None:
        return _homeroom_cell_save(
            actor=actor,
            school=school,
            school_class=school_class,
            enrolment=enrolment,
            cell=cell,
            raw=raw,
            expected=expected,
        )
    entry = CurriculumEntry.objects.filter(
        school_year_id=school_class.school_year_id, grade=school_class.grade, subject_id=cell.subject_id
    ).first()
    if entry is None:
        raise CellError(_("This subject is not taught in this grade."))
    if not can_edit_subject(actor, school, school_class, assigned_teacher_id(school_class, cell.subject_id)):
        raise PermissionDenied(_("You do not teach this subject to this class."))

    if entry.kind == SubjectKind.PRIMARY:
        model, key, term = _primary_target(entry, cell)
    else:
        model, key, term = _secondary_target(entry, cell)
    _refuse_if_locked(school_class, term)
    parser = _value_parser(model, entry, cell.field)
    value = parser(raw)
    row, _created = model.objects.select_for_update().get_or_create(
        enrolment=enrolment, subject_id=cell.subject_id, **key
    )
    refuse_if_changed(old=getattr(row, cell.field), new=value, expected=expected, parser=parser, raw=raw)
    changed = _apply(actor, row, cell.field, value, enrolment, cell.subject_id)
    average = None
    if model is SubjectTermScores and entry.kind == SubjectKind.SCORED:
        average = display(row_average(row, entry.regular_count))
    return CellSaved(
        value=display(getattr(row, cell.field)),
        changed=changed,
        average=average,
        version=row.updated_at.isoformat() if row.updated_at else "",
    )


def _primary_target(entry: CurriculumEntry, cell: Cell):
    if cell.period not in PERIOD_TERM:
        raise CellError(_("Unknown assessment period."))
    if cell.field not in ("level", "test_score", "comment"):
        raise CellError(_("Unknown field."))
    if cell.field == "test_score":
        tested = entry.has_test and (
            cell.period in (PrimaryPeriod.END1, PrimaryPeriod.END2) or entry.has_mid_test
        )
        if not tested:
            raise CellError(_("This subject has no periodic test at this point of the year."))
    return PrimarySubjectAssessment, {"period": cell.period}, PERIOD_TERM[cell.period]


def _secondary_target(entry: CurriculumEntry, cell: Cell):
    if cell.term not in (1, 2):
        raise CellError(_("Unknown term."))
    if entry.kind == SubjectKind.SCORED:
        allowed = (*REGULAR_FIELDS[: entry.regular_count], "mid", "end", "comment")
    else:
        allowed = ("level", "comment")
    if cell.field not in allowed:
        raise CellError(_("Unknown field."))
    return SubjectTermScores, {"term": cell.term}, cell.term


def _value_parser(model, entry: CurriculumEntry, field: str):
    if field == "comment":
        return parse_comment
    if model is PrimarySubjectAssessment:
        return parse_primary_level if field == "level" else parse_test_score
    if field == "level":
        return parse_comment_level
    return parse_score


def _apply(actor: User, row, field: str, value, enrolment: Enrolment, subject_id: int | None) -> bool:
    old = getattr(row, field)
    if old == value:
        return False
    # The parsers validated the value; the field's own validators run here without a query, and
    # the table's CHECK constraints stand behind both (a full_clean() would cost one query per
    # constraint on a path that runs for every keystroke-and-Enter).
    setattr(row, field, row._meta.get_field(field).clean(value, row))
    row.save(update_fields=[field, "updated_at"] if hasattr(row, "updated_at") else [field])
    AssessmentChange.objects.create(
        actor=actor,
        enrolment=enrolment,
        subject_id=subject_id,
        table=row._meta.model_name,
        row_id=row.pk,
        field=field,
        old=display(old),
        new=display(value),
    )
    return True


def _homeroom_cell_save(
    *, actor, school, school_class, enrolment, cell: Cell, raw: str, expected: str | None
) -> CellSaved:
    if not can_edit_homeroom(actor, school, school_class):
        raise PermissionDenied(_("Only the class's homeroom teacher enters this."))
    if cell.field in HOMEROOM_FIELDS:
        _refuse_if_locked(school_class, HOMEROOM_FIELDS[cell.field])
        parser = {
            "absences": parse_absences,
            "homeroom_comment": parse_homeroom_comment,
            "award_proposal": parse_comment,
        }.get(cell.field, parse_result_level)
        value = parser(raw)
        row, _created = StudentYear.objects.select_for_update().get_or_create(enrolment=enrolment)
        refuse_if_changed(old=getattr(row, cell.field), new=value, expected=expected, parser=parser, raw=raw)
    else:
        # TT27 qualities and competencies: field "quality:<code>:level" or "quality:<code>:comment".
        parts = cell.field.split(":")
        if (
            len(parts) != 3
            or parts[0] != "quality"
            or parts[1] not in QUALITY_AND_COMPETENCY_CODES
            or parts[2] not in ("level", "comment")
        ):
            raise CellError(_("Unknown field."), code="unknown_field")
        if school_class.ruleset != Ruleset.TT27:
            raise CellError(_("Unknown field."), code="unknown_field")
        if cell.period not in (PrimaryPeriod.END1, PrimaryPeriod.END2):
            raise CellError(_("Unknown assessment period."))
        _refuse_if_locked(school_class, PERIOD_TERM[cell.period])
        parser = parse_quality_level if parts[2] == "level" else parse_comment
        value = parser(raw)
        quality, _created = QualityAssessment.objects.select_for_update().get_or_create(
            enrolment=enrolment, code=parts[1], period=cell.period
        )
        refuse_if_changed(
            old=getattr(quality, parts[2]), new=value, expected=expected, parser=parser, raw=raw
        )
        changed = _apply(actor, quality, parts[2], value, enrolment, None)
        return CellSaved(value=display(getattr(quality, parts[2])), changed=changed)
    changed = _apply(actor, row, cell.field, value, enrolment, None)
    return CellSaved(value=display(getattr(row, cell.field)), changed=changed)


# --- Terms -----------------------------------------------------------------------------------


@transaction.atomic
def term_lock_set(*, actor: User, school: School, term: Term, locked: bool) -> Term:
    """Lock a term (no more changes) or unlock it for corrections: the principal's decision."""
    if not can_lock_terms(actor, school):
        raise PermissionDenied(_("Only the principal or a vice-principal locks and unlocks terms."))
    term = Term.objects.select_for_update().get(pk=term.pk)
    if (term.locked_at is not None) == locked:
        return term
    term.locked_at = timezone.now() if locked else None
    term.locked_by = actor if locked else None
    term.save(update_fields=["locked_at", "locked_by"])
    audit_record(
        actor=actor,
        action=AuditAction.TERM_LOCKED if locked else AuditAction.TERM_UNLOCKED,
        obj=term,
        summary=(_("%(term)s locked") if locked else _("%(term)s unlocked")) % {"term": term},
        school=school,
        division=None,
    )
    return term
