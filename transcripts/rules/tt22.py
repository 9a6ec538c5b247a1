"""Secondary assessment, Thông tư 22/2021/TT-BGDĐT (THCS and THPT), domain.md §3.

Pure functions over frozen dataclasses. The inputs are assumed valid (scores 0-10 with at most one
decimal, as Decimals; at least MIN_REGULAR_SCORES regular scores per term): the boundary that
reads them, such as `manage.py evaluate`, checks them first.

TT43/2021 (continuing education) is this rule set with the "at least 6 subjects" thresholds set to
5: every function that counts subjects takes `min_subjects`, and tt43.py passes its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import reduce

from .common import CONTEXT, PASSING_RATINGS, TENTH, CommentGrade, Rating

CODE = "tt22"
CIRCULAR = "Thông tư 22/2021/TT-BGDĐT"
# "ít nhất 06 môn học": how many subjects must reach a threshold for Tốt, Khá, Đạt and Xuất sắc.
MIN_SUBJECTS = 6
# At most this many absent sessions (excused or not) for promotion.
MAX_ABSENCES = 45

SCORE_MIN = Decimal(0)
SCORE_MAX = Decimal(10)
# TT22 art. 7: at least 2 regular scores (ĐĐGtx) per term, for a subject of 35 periods a year.
MIN_REGULAR_SCORES = 2

_GOOD_FLOOR = Decimal("6.5")  # Tốt: every scored subject at least this ...
_GOOD_HIGH = Decimal("8.0")  # ... and at least min_subjects of them at least this
_FAIR_FLOOR = Decimal("5.0")  # Khá: every scored subject at least this ...
_FAIR_HIGH = Decimal("6.5")  # ... and at least min_subjects of them at least this
_PASS_HIGH = Decimal("5.0")  # Đạt: at least min_subjects scored subjects at least this ...
_PASS_FLOOR = Decimal("3.5")  # ... and none below this
_EXCELLENT = Decimal("9.0")  # Xuất sắc: at least min_subjects year averages at least this
_MID_WEIGHT = 2
_END_WEIGHT = 3
_YEAR_WEIGHT_TERM2 = 2

# A province's batch computes millions of averages: the context's operations are bound once (the
# exact arithmetic and the half-up rounding are common.round_half_up's, written out here).
_add = CONTEXT.add
_multiply = CONTEXT.multiply
_divide = CONTEXT.divide
_fma = CONTEXT.fma  # fma(a, b, c) = a·b + c, exactly


@dataclass(frozen=True, slots=True)
class TermScores:
    """One term of a scored subject: regular scores (ĐĐGtx), the mid-term (ĐĐGgk) and end-term (ĐĐGck)."""

    regular: tuple[Decimal, ...]
    mid: Decimal
    end: Decimal


@dataclass(frozen=True, slots=True)
class ScoredSubject:
    """A subject assessed with comments and scores (nhận xét kết hợp điểm số)."""

    code: str
    term1: TermScores
    term2: TermScores


@dataclass(frozen=True, slots=True)
class CommentSubject:
    """A subject assessed with comments only (Giáo dục thể chất, Nghệ thuật, HĐTN-HN, ...)."""

    code: str
    term1: CommentGrade
    term2: CommentGrade


Subject = ScoredSubject | CommentSubject


@dataclass(frozen=True, slots=True)
class Ratings:
    """A result given per term and for the year: conduct (set by the homeroom teacher) or learning."""

    term1: Rating
    term2: Rating
    year: Rating


@dataclass(frozen=True, slots=True)
class SecondaryStudent:
    """What the rules need about one student's school year."""

    subjects: tuple[Subject, ...]
    conduct: Ratings
    absences: int


class Title(StrEnum):
    EXCELLENT = "xuat_sac"  # Học sinh Xuất sắc
    GOOD = "gioi"  # Học sinh Giỏi


class Outcome(StrEnum):
    PROMOTED = "promoted"  # lên lớp
    SUMMER_TRAINING = "summer_training"  # rèn luyện trong hè
    REASSESSMENT = "reassessment"  # kiểm tra lại
    REPEAT = "repeat"  # ở lại lớp


@dataclass(frozen=True, slots=True)
class SubjectResult:
    """A subject's term and year values: averages (ĐTBmhk, ĐTBmcn) or comment grades."""

    code: str
    scored: bool
    term1: Decimal | CommentGrade
    term2: Decimal | CommentGrade
    year: Decimal | CommentGrade


@dataclass(frozen=True, slots=True)
class SecondaryResult:
    """Everything the rules decide about one student's year, subjects in input order."""

    subjects: tuple[SubjectResult, ...]
    learning: Ratings
    title: Title | None
    outcome: Outcome


def term_average(term: TermScores) -> Decimal:
    """ĐTBmhk = (ΣĐĐGtx + 2·ĐĐGgk + 3·ĐĐGck) / (number of ĐĐGtx + 5), rounded half up."""
    regular = term.regular
    weighted = _fma(term.end, _END_WEIGHT, _multiply(term.mid, _MID_WEIGHT))
    total = reduce(_add, regular, weighted)
    count = len(regular) + _MID_WEIGHT + _END_WEIGHT
    return _divide(total, count).quantize(TENTH, ROUND_HALF_UP, CONTEXT)


def year_average(term1: Decimal, term2: Decimal) -> Decimal:
    """ĐTBmcn = (ĐTBmhkI + 2·ĐTBmhkII) / 3, rounded half up.

    The circular defines it over the term averages as they are recorded, that is rounded; using
    the unrounded quotients can give a different year average (the tests hold such a case).
    """
    total = _fma(term2, _YEAR_WEIGHT_TERM2, term1)
    return _divide(total, 1 + _YEAR_WEIGHT_TERM2).quantize(TENTH, ROUND_HALF_UP, CONTEXT)


def learning_result(
    scored: Sequence[Decimal], comments: Sequence[str], *, min_subjects: int = MIN_SUBJECTS
) -> Rating:
    """The learning result (kết quả học tập) of one term or of the year.

    `scored` holds the scored subjects' averages for that period, `comments` the comment-only
    subjects' grades ("Đ"/"CĐ"; the year's are term II's).

    - Tốt: every comment subject Đ; every scored subject >= 6.5 and at least 6 of them >= 8.0;
    - Khá: every comment subject Đ; every scored subject >= 5.0 and at least 6 of them >= 6.5;
    - Đạt: at most one comment subject CĐ; at least 6 scored subjects >= 5.0; none below 3.5;
    - Chưa đạt otherwise. (TT43: 5 instead of 6, through `min_subjects`.)

    Fewer than `min_subjects` scored subjects: the circular's text is read literally. "At least 6
    of them" cannot be met by a student with 5 scored subjects, so such a student can only be
    Chưa đạt, whatever the scores; the threshold is not lowered to the number of subjects taken.
    The circulars give no exception, and inventing one would be a rule the Ministry did not write;
    a student exempt from subjects is the principal's decision (domain.md §3), not this function's.
    """
    # "At least n of them reach x" is "the n-th best reaches x": one sort answers all three.
    if len(scored) < min_subjects:
        return Rating.NOT_ACHIEVED
    ranked = sorted(scored, reverse=True)
    nth_best, lowest = ranked[min_subjects - 1], ranked[-1]
    failed_comments = len(comments) - comments.count(CommentGrade.ACHIEVED)
    if failed_comments == 0:
        if lowest >= _GOOD_FLOOR and nth_best >= _GOOD_HIGH:
            return Rating.GOOD
        if lowest >= _FAIR_FLOOR and nth_best >= _FAIR_HIGH:
            return Rating.FAIR
    if failed_comments <= 1 and lowest >= _PASS_FLOOR and nth_best >= _PASS_HIGH:
        return Rating.ACHIEVED
    return Rating.NOT_ACHIEVED


def title(
    *,
    conduct_year: Rating,
    learning_year: Rating,
    year_averages: Sequence[Decimal],
    min_subjects: int = MIN_SUBJECTS,
) -> Title | None:
    """Học sinh Xuất sắc: conduct Tốt, learning Tốt and at least 6 subjects with ĐTBmcn >= 9.0;
    Học sinh Giỏi: conduct Tốt and learning Tốt; otherwise no title. (TT43: 5 subjects.)"""
    if conduct_year != Rating.GOOD or learning_year != Rating.GOOD:
        return None
    nth_best = _nth_best(year_averages, min_subjects)
    if nth_best is not None and nth_best >= _EXCELLENT:
        return Title.EXCELLENT
    return Title.GOOD


def outcome(*, conduct_year: Rating, learning_year: Rating, absences: int) -> Outcome:
    """What happens after the year.

    More than 45 absent sessions: the student repeats the grade. Otherwise conduct and learning
    both at least Đạt: promoted. Otherwise conduct Chưa đạt: summer re-training (even when learning
    is Chưa đạt too: the re-training comes first, and the re-assessment of learning is decided
    with its result). Otherwise (learning Chưa đạt, conduct at least Đạt): re-assessment.
    """
    if absences > MAX_ABSENCES:
        return Outcome.REPEAT
    if conduct_year in PASSING_RATINGS and learning_year in PASSING_RATINGS:
        return Outcome.PROMOTED
    if conduct_year == Rating.NOT_ACHIEVED:
        return Outcome.SUMMER_TRAINING
    return Outcome.REASSESSMENT


def evaluate(student: SecondaryStudent, *, min_subjects: int = MIN_SUBJECTS) -> SecondaryResult:
    """Term and year averages, learning results, title and outcome of one student's year."""
    subjects: list[SubjectResult] = []
    scored1: list[Decimal] = []
    scored2: list[Decimal] = []
    scored_year: list[Decimal] = []
    comments1: list[str] = []
    comments2: list[str] = []
    for subject in student.subjects:
        if isinstance(subject, ScoredSubject):
            average1 = term_average(subject.term1)
            average2 = term_average(subject.term2)
            average_year = year_average(average1, average2)
            scored1.append(average1)
            scored2.append(average2)
            scored_year.append(average_year)
            subjects.append(SubjectResult(subject.code, True, average1, average2, average_year))
        else:
            comments1.append(subject.term1)
            comments2.append(subject.term2)
            # A comment subject's year result is its term II result.
            subjects.append(SubjectResult(subject.code, False, subject.term1, subject.term2, subject.term2))
    learning = Ratings(
        term1=learning_result(scored1, comments1, min_subjects=min_subjects),
        term2=learning_result(scored2, comments2, min_subjects=min_subjects),
        year=learning_result(scored_year, comments2, min_subjects=min_subjects),
    )
    conduct_year = student.conduct.year
    return SecondaryResult(
        subjects=tuple(subjects),
        learning=learning,
        title=title(
            conduct_year=conduct_year,
            learning_year=learning.year,
            year_averages=scored_year,
            min_subjects=min_subjects,
        ),
        outcome=outcome(conduct_year=conduct_year, learning_year=learning.year, absences=student.absences),
    )


def _nth_best(values: Sequence[Decimal], n: int) -> Decimal | None:
    """The n-th highest value (n counted from 1), or None when there are fewer than n values."""
    if len(values) < n:
        return None
    return sorted(values, reverse=True)[n - 1]
