"""Secondary assessment, Thông tư 22/2021/TT-BGDĐT (THCS and THPT), domain.md §3.

Pure functions over frozen dataclasses. The inputs are assumed valid (scores 0-10 with at most one
decimal, as Decimals; at least MIN_REGULAR_SCORES regular scores per term): the boundary that
reads them, such as `manage.py evaluate`, checks them first.

TT43/2021 (continuing education) is this rule set with the "at least 6 subjects" thresholds set to
5: every function that counts subjects takes `min_subjects`, and tt43.py passes its own.

Two ways to the same numbers. `term_average` and `year_average` compute in Decimals, for any
Decimal. `evaluate` and `evaluate_in_tenths`, which a province's batch goes through, compute in
integers: a valid score (0.0 to 10.0, one decimal) is a whole number of tenths, so a term total
is exact in tenths, and rounding total / count half up to a tenth is (2·total + count) //
(2·count). The quotient is never rounded before that (no double rounding), which is why integers
give exactly the Decimals' results (common.CONTEXT explains why the Decimals' 28-digit quotient
never crosses a half either); tests/transcripts/test_rules_tenths.py checks every term total and
every pair of term averages against the Decimals. A student with any score that is not such a
tenth is evaluated in Decimals, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import reduce
from typing import Any, NamedTuple

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
# The thresholds of learning_result, in Decimals and in tenths (the same lines: 6.5 is 65).
_THRESHOLDS = (_GOOD_FLOOR, _GOOD_HIGH, _FAIR_FLOOR, _FAIR_HIGH, _PASS_FLOOR, _PASS_HIGH)
_THRESHOLDS_IN_TENTHS = tuple(int(threshold * 10) for threshold in _THRESHOLDS)
_EXCELLENT_IN_TENTHS = int(_EXCELLENT * 10)

# Every valid score and every average, 0.0 to 10.0, as a number of tenths (keyed by value: 7.5,
# 7.50 and the int 7 find theirs; 7.25 or 11 find none) and back, as one shared Decimal each
# (Decimal("0.0") ... Decimal("10.0"): what quantizing to TENTH gives, exponent -1 included).
_DECIMALS = tuple(Decimal(tenths).scaleb(-1) for tenths in range(101))
_TENTHS: dict[Decimal, int] = {decimal: tenths for tenths, decimal in enumerate(_DECIMALS)}

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
    failed_comments = len(comments) - comments.count(CommentGrade.ACHIEVED)
    return _learning(scored, failed_comments, min_subjects, _THRESHOLDS)


def _learning(scored: Sequence[Any], failed_comments: int, min_subjects: int, thresholds: tuple) -> Rating:
    """learning_result on one scale: Decimals with _THRESHOLDS, or tenths with _THRESHOLDS_IN_TENTHS."""
    # "At least n of them reach x" is "the n-th best reaches x": one sort answers all three.
    if len(scored) < min_subjects:
        return Rating.NOT_ACHIEVED
    ranked = sorted(scored, reverse=True)
    nth_best, lowest = ranked[min_subjects - 1], ranked[-1]
    good_floor, good_high, fair_floor, fair_high, pass_floor, pass_high = thresholds
    if failed_comments == 0:
        if lowest >= good_floor and nth_best >= good_high:
            return Rating.GOOD
        if lowest >= fair_floor and nth_best >= fair_high:
            return Rating.FAIR
    if failed_comments <= 1 and lowest >= pass_floor and nth_best >= pass_high:
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
    return _title(conduct_year, learning_year, year_averages, min_subjects, _EXCELLENT)


def _title(
    conduct_year: Rating,
    learning_year: Rating,
    year_averages: Sequence[Any],
    min_subjects: int,
    excellent: Any,
) -> Title | None:
    """title on one scale: Decimals with _EXCELLENT, or tenths with _EXCELLENT_IN_TENTHS."""
    if conduct_year != Rating.GOOD or learning_year != Rating.GOOD:
        return None
    nth_best = _nth_best(year_averages, min_subjects)
    if nth_best is not None and nth_best >= excellent:
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


class YearInTenths(NamedTuple):
    """What evaluate_in_tenths decides: the averages in tenths of a point (77 is 7.7)."""

    # Each scored subject's (term I, term II, year) averages, in the order given.
    averages: list[tuple[int, int, int]]
    # The learning result of term I, term II and the year.
    learning: tuple[Rating, Rating, Rating]
    title: Title | None
    outcome: Outcome


# One scored subject for evaluate_in_tenths, in tenths: the sum of the regular scores, how many
# there are, the mid-term and end-term scores of term I, then the same four of term II.
ScoresInTenths = tuple[int, int, int, int, int, int, int, int]


def evaluate_in_tenths(
    scored: Iterable[ScoresInTenths],
    comments1: Sequence[str],
    comments2: Sequence[str],
    *,
    conduct_year: Rating,
    absences: int,
    min_subjects: int = MIN_SUBJECTS,
) -> YearInTenths:
    """evaluate on plain numbers: each scored subject's scores in tenths (see ScoresInTenths), the
    comment subjects' grades of term I and term II, the year's conduct and the absences.

    The same formulas as term_average and year_average, in integers (see the module's docstring):
    rounding total / count half up to a whole number of tenths is (2·total + count) // (2·count).
    This is what a province's batch goes through (`manage.py evaluate`, and evaluate below).
    """
    mid_weight, end_weight, term2_weight = _MID_WEIGHT, _END_WEIGHT, _YEAR_WEIGHT_TERM2
    extra = mid_weight + end_weight
    year_count = 1 + term2_weight
    averages = []
    for regular1, count1, mid1, end1, regular2, count2, mid2, end2 in scored:
        count1 += extra
        average1 = (2 * (regular1 + mid_weight * mid1 + end_weight * end1) + count1) // (2 * count1)
        count2 += extra
        average2 = (2 * (regular2 + mid_weight * mid2 + end_weight * end2) + count2) // (2 * count2)
        average_year = (2 * (average1 + term2_weight * average2) + year_count) // (2 * year_count)
        averages.append((average1, average2, average_year))
    achieved = CommentGrade.ACHIEVED
    failed1 = len(comments1) - comments1.count(achieved)
    failed2 = len(comments2) - comments2.count(achieved)
    thresholds = _THRESHOLDS_IN_TENTHS
    scored_year = [average[2] for average in averages]
    learning_year = _learning(scored_year, failed2, min_subjects, thresholds)
    return YearInTenths(
        averages,
        (
            _learning([average[0] for average in averages], failed1, min_subjects, thresholds),
            _learning([average[1] for average in averages], failed2, min_subjects, thresholds),
            learning_year,
        ),
        _title(conduct_year, learning_year, scored_year, min_subjects, _EXCELLENT_IN_TENTHS),
        outcome(conduct_year=conduct_year, learning_year=learning_year, absences=absences),
    )


def evaluate(student: SecondaryStudent, *, min_subjects: int = MIN_SUBJECTS) -> SecondaryResult:
    """Term and year averages, learning results, title and outcome of one student's year.

    Computed in tenths (evaluate_in_tenths) when every score is a valid one (0.0 to 10.0, one
    decimal), as every stored score is; otherwise in Decimals, exactly as before.
    """
    tenths = _TENTHS.__getitem__
    scored: list[ScoresInTenths] = []
    comments1: list[str] = []
    comments2: list[str] = []
    try:
        for subject in student.subjects:
            if isinstance(subject, ScoredSubject):
                one, two = subject.term1, subject.term2
                regular1, regular2 = one.regular, two.regular
                scored.append(
                    (
                        sum(map(tenths, regular1)),
                        len(regular1),
                        tenths(one.mid),
                        tenths(one.end),
                        sum(map(tenths, regular2)),
                        len(regular2),
                        tenths(two.mid),
                        tenths(two.end),
                    )
                )
            else:
                comments1.append(subject.term1)
                comments2.append(subject.term2)
    except (KeyError, TypeError):  # not a tenth from 0.0 to 10.0 (TypeError: not even hashable)
        return _evaluate_in_decimals(student, min_subjects=min_subjects)
    year = evaluate_in_tenths(
        scored,
        comments1,
        comments2,
        conduct_year=student.conduct.year,
        absences=student.absences,
        min_subjects=min_subjects,
    )
    averages = iter(year.averages)
    subjects = []
    results = _RESULTS
    for subject in student.subjects:
        # A result is immutable and its values come from a few hundred: the same subject with the
        # same averages (or grades) gets the same shared object, without building it again.
        if isinstance(subject, ScoredSubject):
            average1, average2, average_year = next(averages)
            key: tuple = (subject.code, average1, average2)
            found = results.get(key)
            if found is None:
                found = SubjectResult(
                    subject.code, True, _DECIMALS[average1], _DECIMALS[average2], _DECIMALS[average_year]
                )
                if len(results) < _RESULTS_MAX:
                    results[key] = found
        else:
            grade1, grade2 = subject.term1, subject.term2
            # Only the enum's members are shared: an equal str stays the caller's own.
            key = (subject.code, grade1, grade2)
            shared = type(grade1) is CommentGrade and type(grade2) is CommentGrade
            found = results.get(key) if shared else None
            if found is None:
                # A comment subject's year result is its term II result.
                found = SubjectResult(subject.code, False, grade1, grade2, grade2)
                if shared and len(results) < _RESULTS_MAX:
                    results[key] = found
        subjects.append(found)
    return SecondaryResult(tuple(subjects), Ratings(*year.learning), year.title, year.outcome)


# The shared SubjectResults of evaluate, by (code, term I, term II); bounded, past it results are
# built each time.
_RESULTS: dict[tuple, SubjectResult] = {}
_RESULTS_MAX = 1 << 16


def _evaluate_in_decimals(student: SecondaryStudent, *, min_subjects: int) -> SecondaryResult:
    """evaluate in Decimals, for scores that are not a tenth from 0.0 to 10.0."""
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


def _nth_best(values: Sequence[Any], n: int) -> Any | None:
    """The n-th highest value (n counted from 1), or None when there are fewer than n values."""
    if len(values) < n:
        return None
    return sorted(values, reverse=True)[n - 1]
