"""TT43/2021 (continuing education, GDTX): TT22 with "at least 5 subjects" for "at least 6".

The cases sit on the subject counts (4 and 5) for Tốt, Khá, Đạt and Xuất sắc; the rest of the
circular is TT22's code, tested in test_rules_tt22.py.
"""

from __future__ import annotations

from decimal import Decimal

from transcripts.rules import tt22, tt43
from transcripts.rules.common import CommentGrade, Rating
from transcripts.rules.tt22 import (
    CommentSubject,
    Outcome,
    Ratings,
    ScoredSubject,
    SecondaryStudent,
    TermScores,
    Title,
)

T, K, D, CD = Rating.GOOD, Rating.FAIR, Rating.ACHIEVED, Rating.NOT_ACHIEVED
PASSED, FAILED = CommentGrade.ACHIEVED, CommentGrade.NOT_ACHIEVED
ALL_PASSED = [PASSED] * 3


def dec(*values: object) -> list[Decimal]:
    return [Decimal(str(value)) for value in values]


def gdtx_student(averages: list[object], comments: tuple[str, ...] = ("Đ", "Đ")) -> SecondaryStudent:
    """A GDTX student whose scored subjects average `averages` in both terms."""

    def flat(value: object) -> TermScores:
        score = Decimal(str(value))
        return TermScores(regular=(score, score), mid=score, end=score)

    subjects: list = [ScoredSubject(f"s{i}", flat(a), flat(a)) for i, a in enumerate(averages)]
    subjects += [CommentSubject(f"c{i}", CommentGrade(g), CommentGrade(g)) for i, g in enumerate(comments)]
    return SecondaryStudent(subjects=tuple(subjects), conduct=Ratings(T, T, T), absences=0)


def test_it_rates_tot_with_five_subjects_at_8():
    averages = dec(8.0, 8.0, 8.0, 8.0, 8.0, 6.5, 6.5)
    assert tt43.learning_result(averages, ALL_PASSED) == T
    assert tt22.learning_result(averages, ALL_PASSED) == K  # the same marks in a THPT


def test_it_rates_kha_when_only_four_subjects_reach_8():
    assert tt43.learning_result(dec(8.0, 8.0, 8.0, 8.0, 7.9, 7.9), ALL_PASSED) == K


def test_it_rates_kha_with_five_subjects_at_6_5():
    assert tt43.learning_result(dec(6.5, 6.5, 6.5, 6.5, 6.5, 5.0), ALL_PASSED) == K


def test_it_rates_dat_when_only_four_subjects_reach_6_5():
    assert tt43.learning_result(dec(6.5, 6.5, 6.5, 6.5, 6.4, 5.0), ALL_PASSED) == D


def test_it_rates_dat_with_five_subjects_at_5():
    assert tt43.learning_result(dec(5.0, 5.0, 5.0, 5.0, 5.0, 3.5), ALL_PASSED) == D


def test_it_rates_chua_dat_when_only_four_subjects_reach_5():
    assert tt43.learning_result(dec(5.0, 5.0, 5.0, 5.0, 4.9, 4.9), ALL_PASSED) == CD


def test_it_keeps_the_other_lines_of_tt22():
    assert tt43.learning_result(dec(9, 9, 9, 9, 9, 6.4), ALL_PASSED) == K  # one below 6.5
    assert tt43.learning_result(dec(9, 9, 9, 9, 9, 3.4), ALL_PASSED) == CD  # one below 3.5
    assert tt43.learning_result(dec(9, 9, 9, 9, 9), [PASSED, FAILED]) == D  # one comment CĐ
    assert tt43.learning_result(dec(9, 9, 9, 9, 9), [FAILED, FAILED]) == CD  # two


def test_it_allows_exactly_five_scored_subjects():
    assert tt43.learning_result(dec(8, 8, 8, 8, 8), ALL_PASSED) == T


def test_it_rates_chua_dat_with_four_scored_subjects_whatever_the_scores():
    assert tt43.learning_result(dec(10, 10, 10, 10), ALL_PASSED) == CD


def test_it_names_xuat_sac_with_five_year_averages_at_9():
    averages = dec(9.0, 9.0, 9.0, 9.0, 9.0, 7.0)
    assert tt43.title(conduct_year=T, learning_year=T, year_averages=averages) == Title.EXCELLENT
    assert tt22.title(conduct_year=T, learning_year=T, year_averages=averages) == Title.GOOD


def test_it_names_gioi_when_only_four_year_averages_reach_9():
    averages = dec(9.0, 9.0, 9.0, 9.0, 8.9, 8.0)
    assert tt43.title(conduct_year=T, learning_year=T, year_averages=averages) == Title.GOOD


def test_it_evaluates_a_gdtx_student_with_five_subjects_end_to_end():
    result = tt43.evaluate(gdtx_student([9.0, 9.5, 9.0, 9.2, 9.0]))
    assert result.learning == Ratings(T, T, T)
    assert result.title == Title.EXCELLENT
    assert result.outcome == Outcome.PROMOTED
    # Under TT22 the same student has too few subjects for any result but Chưa đạt.
    assert tt22.evaluate(gdtx_student([9.0, 9.5, 9.0, 9.2, 9.0])).learning == Ratings(CD, CD, CD)


def test_it_is_tt22_with_five_subjects():
    student = gdtx_student([8.0, 8.0, 8.0, 8.0, 8.0, 7.0], comments=("Đ", "CĐ"))
    assert tt43.evaluate(student) == tt22.evaluate(student, min_subjects=5)
