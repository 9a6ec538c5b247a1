"""TT22/TT43 in tenths: the integer arithmetic gives exactly the Decimal results it replaced.

`tt22.evaluate` computes in whole tenths of a point (evaluate_in_tenths). The Decimal code it
replaced is copied below as the reference, unchanged (rev. 7462b61), and the two are compared:
exhaustively on every term total and every pair of term averages a valid input can produce, and
on thousands of random students (seeded, so a failure is repeatable), many of them on the lines
the circular draws. No database.
"""

from __future__ import annotations

import decimal
import random
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from functools import reduce

import pytest

from transcripts.rules import tt22, tt43
from transcripts.rules.common import PASSING_RATINGS, CommentGrade, Rating
from transcripts.rules.tt22 import (
    CommentSubject,
    Outcome,
    Ratings,
    ScoredSubject,
    SecondaryResult,
    SecondaryStudent,
    TermScores,
    Title,
)

# --- The reference: the Decimal implementation as it was --------------------------------------

_CONTEXT = Context(prec=28, rounding=ROUND_HALF_UP, traps=[InvalidOperation, DivisionByZero, Overflow])
_TENTH = Decimal("0.1")


def reference_term_average(term: TermScores) -> Decimal:
    weighted = _CONTEXT.fma(term.end, 3, _CONTEXT.multiply(term.mid, 2))
    total = reduce(_CONTEXT.add, term.regular, weighted)
    return _CONTEXT.divide(total, len(term.regular) + 5).quantize(_TENTH, ROUND_HALF_UP, _CONTEXT)


def reference_year_average(term1: Decimal, term2: Decimal) -> Decimal:
    return _CONTEXT.divide(_CONTEXT.fma(term2, 2, term1), 3).quantize(_TENTH, ROUND_HALF_UP, _CONTEXT)


def reference_learning(scored: list[Decimal], comments: list[str], min_subjects: int) -> Rating:
    if len(scored) < min_subjects:
        return Rating.NOT_ACHIEVED
    ranked = sorted(scored, reverse=True)
    nth_best, lowest = ranked[min_subjects - 1], ranked[-1]
    failed = len(comments) - comments.count(CommentGrade.ACHIEVED)
    if failed == 0:
        if lowest >= Decimal("6.5") and nth_best >= Decimal("8.0"):
            return Rating.GOOD
        if lowest >= Decimal("5.0") and nth_best >= Decimal("6.5"):
            return Rating.FAIR
    if failed <= 1 and lowest >= Decimal("3.5") and nth_best >= Decimal("5.0"):
        return Rating.ACHIEVED
    return Rating.NOT_ACHIEVED


def reference_evaluate(student: SecondaryStudent, min_subjects: int) -> SecondaryResult:
    subjects, scored1, scored2, scored_year, comments1, comments2 = [], [], [], [], [], []
    for subject in student.subjects:
        if isinstance(subject, ScoredSubject):
            one, two = reference_term_average(subject.term1), reference_term_average(subject.term2)
            year = reference_year_average(one, two)
            scored1.append(one)
            scored2.append(two)
            scored_year.append(year)
            subjects.append(tt22.SubjectResult(subject.code, True, one, two, year))
        else:
            comments1.append(subject.term1)
            comments2.append(subject.term2)
            subjects.append(
                tt22.SubjectResult(subject.code, False, subject.term1, subject.term2, subject.term2)
            )
    learning = Ratings(
        reference_learning(scored1, comments1, min_subjects),
        reference_learning(scored2, comments2, min_subjects),
        reference_learning(scored_year, comments2, min_subjects),
    )
    conduct = student.conduct.year
    title = None
    if conduct == Rating.GOOD and learning.year == Rating.GOOD:
        ranked = sorted(scored_year, reverse=True)
        excellent = len(ranked) >= min_subjects and ranked[min_subjects - 1] >= Decimal("9.0")
        title = Title.EXCELLENT if excellent else Title.GOOD
    if student.absences > 45:
        outcome = Outcome.REPEAT
    elif conduct in PASSING_RATINGS and learning.year in PASSING_RATINGS:
        outcome = Outcome.PROMOTED
    elif conduct == Rating.NOT_ACHIEVED:
        outcome = Outcome.SUMMER_TRAINING
    else:
        outcome = Outcome.REASSESSMENT
    return SecondaryResult(tuple(subjects), learning, title, outcome)


# --- Helpers ----------------------------------------------------------------------------------


def score(tenths: int) -> Decimal:
    """A score as a fresh Decimal (not one of tt22's shared ones): 75 -> Decimal("7.5")."""
    return Decimal(f"{tenths // 10}.{tenths % 10}")


def scores_with_total(total: int, regular_count: int) -> TermScores | None:
    """A term whose weighted total (Σ regular + 2·mid + 3·end) is `total` tenths, if one exists."""
    end = min(100, total // 3)
    mid = min(100, (total - 3 * end) // 2)
    rest = total - 3 * end - 2 * mid
    if rest > 100 * regular_count or (rest and not regular_count):
        return None
    regular = []
    for _ in range(regular_count):
        share = min(100, rest)
        regular.append(share)
        rest -= share
    return TermScores(tuple(score(s) for s in regular), score(mid), score(end))


def exact(value: object) -> tuple:
    """A value with what equality forgets: a Decimal's digits and exponent, an enum's type."""
    if isinstance(value, Decimal):
        return ("decimal", value.as_tuple(), str(value))
    return (type(value).__name__, value)


def same(result: SecondaryResult, expected: SecondaryResult) -> bool:
    rows = [(s.code, s.scored, exact(s.term1), exact(s.term2), exact(s.year)) for s in result.subjects]
    expected_rows = [
        (s.code, s.scored, exact(s.term1), exact(s.term2), exact(s.year)) for s in expected.subjects
    ]
    return (
        rows == expected_rows
        and result.learning == expected.learning
        and result.title == expected.title
        and result.outcome == expected.outcome
    )


def one_subject(term1: TermScores, term2: TermScores) -> SecondaryStudent:
    return SecondaryStudent((ScoredSubject("toan", term1, term2),), Ratings(*[Rating.GOOD] * 3), 0)


# --- Exhaustive -------------------------------------------------------------------------------


@pytest.mark.parametrize("regular_count", range(0, 13))
def test_every_term_total_averages_as_the_decimals_do(regular_count):
    count = regular_count + 5
    checked = 0
    for total in range(0, 100 * count + 1):
        term = scores_with_total(total, regular_count)
        if term is None:
            continue
        expected = reference_term_average(term)
        subject = tt22.evaluate(one_subject(term, term)).subjects[0]
        assert exact(subject.term1) == exact(subject.term2) == exact(expected), (regular_count, total)
        assert tt22.term_average(term) == expected
        checked += 1
    if regular_count:  # without regular scores, some totals cannot be made (1 = 2·mid + 3·end)
        assert checked == 100 * count + 1


def test_every_pair_of_term_averages_gives_the_decimals_year_average():
    flat = [TermScores((score(t), score(t)), score(t), score(t)) for t in range(101)]
    for one in range(101):
        for two in range(101):
            subject = tt22.evaluate(one_subject(flat[one], flat[two])).subjects[0]
            expected = reference_year_average(score(one), score(two))
            assert exact(subject.year) == exact(expected), (one, two)
            assert exact(subject.term1) == exact(score(one))


# --- Random students --------------------------------------------------------------------------

# Levels that put averages on and around the circular's lines (3.5, 5.0, 6.5, 8.0, 9.0).
_LINES = [35, 50, 65, 80, 90]


def random_student(rng: random.Random) -> SecondaryStudent:
    level = rng.choice(_LINES) if rng.random() < 0.6 else rng.randint(0, 100)
    spread = rng.choice((0, 1, 3, 10, 30))
    subjects: list = []
    for index in range(rng.randint(0, 14)):
        terms = []
        for _ in range(2):
            count = rng.choice((2, 2, 3, 4, 4, 5, 8))
            values = [min(100, max(0, level + rng.randint(-spread, spread))) for _ in range(count + 2)]
            terms.append(TermScores(tuple(map(score, values[:count])), score(values[-2]), score(values[-1])))
        subjects.append(ScoredSubject(f"s{index}", *terms))
    for index in range(rng.choice((0, 1, 2, 4, 5))):
        grades = [CommentGrade.NOT_ACHIEVED if rng.random() < 0.15 else CommentGrade.ACHIEVED for _ in "12"]
        subjects.append(CommentSubject(f"c{index}", *grades))
    rng.shuffle(subjects)
    ratings = list(Rating)
    conduct = Ratings(rng.choice(ratings), rng.choice(ratings), rng.choice(ratings))
    return SecondaryStudent(tuple(subjects), conduct, rng.choice((0, 3, 44, 45, 46, 90)))


@pytest.mark.parametrize("seed", range(4))
def test_random_students_get_the_decimals_results_under_tt22_and_tt43(seed):
    rng = random.Random(seed)
    for _ in range(2500):
        student = random_student(rng)
        assert same(tt22.evaluate(student), reference_evaluate(student, 6)), student
        assert same(tt43.evaluate(student), reference_evaluate(student, 5)), student


def test_scores_that_are_not_tenths_are_computed_in_decimals_as_before():
    odd = [Decimal("7.25"), Decimal("8.125"), Decimal("10.5"), Decimal("-1"), Decimal("6.55")]
    rng = random.Random(7)
    for value in odd:
        student = random_student(rng)
        term = TermScores((value, Decimal("8")), Decimal("7.5"), value)
        student = SecondaryStudent(
            (*student.subjects, ScoredSubject("odd", term, term)), student.conduct, student.absences
        )
        assert same(tt22.evaluate(student), reference_evaluate(student, 6))


def test_scores_written_differently_are_the_same_tenths():
    # 7.50, the int 7 and 7.5 are the values 7.5 and 7: results as with the plain Decimals.
    plain = TermScores((Decimal("7.5"), Decimal("7")), Decimal("8"), Decimal("9.0"))
    written = TermScores((Decimal("7.50"), 7), Decimal("8.00"), Decimal("9"))
    expected = reference_evaluate(one_subject(plain, plain), 6)
    assert same(tt22.evaluate(one_subject(written, written)), expected)


def test_the_callers_decimal_context_changes_nothing():
    rng = random.Random(11)
    students = [random_student(rng) for _ in range(200)]
    expected = [reference_evaluate(student, 6) for student in students]
    with decimal.localcontext() as context:
        context.prec = 2
        context.rounding = decimal.ROUND_DOWN
        assert all(same(tt22.evaluate(s), e) for s, e in zip(students, expected, strict=True))


def test_evaluate_in_tenths_answers_in_tenths():
    # toan: (80 + 90 + 2·70 + 3·60) / 7 = 490 / 7 = 70; term II all 90; year (70 + 180) / 3 = 83.3.
    year = tt22.evaluate_in_tenths(
        [(170, 2, 70, 60, 180, 2, 90, 90)],
        [CommentGrade.ACHIEVED],
        [CommentGrade.ACHIEVED],
        conduct_year=Rating.GOOD,
        absences=0,
        min_subjects=1,
    )
    assert year.averages == [(70, 90, 83)]
    assert year.learning == (Rating.FAIR, Rating.GOOD, Rating.GOOD)
    assert (year.title, year.outcome) == (Title.GOOD, Outcome.PROMOTED)
