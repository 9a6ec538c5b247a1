"""TT22/2021 (THCS and THPT): averages, learning results, titles and outcomes (domain.md §3).

Each case sits on a line the circular draws (6.5, 8.0, 5.0, 3.5, 9.0; "at least 6 subjects";
one comment subject Chưa đạt; 45 absences), one step either side of it. No database.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from transcripts.rules.common import CommentGrade, Rating, round_half_up, to_decimal
from transcripts.rules.tt22 import (
    CommentSubject,
    Outcome,
    Ratings,
    ScoredSubject,
    SecondaryStudent,
    TermScores,
    Title,
    evaluate,
    learning_result,
    outcome,
    term_average,
    title,
    year_average,
)

T, K, D, CD = Rating.GOOD, Rating.FAIR, Rating.ACHIEVED, Rating.NOT_ACHIEVED
PASSED, FAILED = CommentGrade.ACHIEVED, CommentGrade.NOT_ACHIEVED
ALL_PASSED = [PASSED] * 4


def dec(*values: object) -> list[Decimal]:
    return [Decimal(str(value)) for value in values]


def term(regular: tuple, mid: object, end: object) -> TermScores:
    return TermScores(regular=tuple(dec(*regular)), mid=Decimal(str(mid)), end=Decimal(str(end)))


def flat(average: object) -> TermScores:
    """A term whose every score is `average`, so that its average is exactly that."""
    return term((average, average), average, average)


def student(
    year: list[object],
    *,
    term1: list[object] | None = None,
    comments: list[tuple[str, str]] | None = None,
    conduct: tuple[Rating, Rating, Rating] = (T, T, T),
    absences: int = 0,
) -> SecondaryStudent:
    """A student whose scored subjects average `year` in both terms (or `term1` in term I)."""
    first = term1 if term1 is not None else year
    pairs = zip(first, year, strict=True)
    subjects: list = [ScoredSubject(f"s{i}", flat(one), flat(two)) for i, (one, two) in enumerate(pairs)]
    for index, (one, two) in enumerate(comments if comments is not None else [("Đ", "Đ")] * 4):
        subjects.append(CommentSubject(f"c{index}", CommentGrade(one), CommentGrade(two)))
    return SecondaryStudent(subjects=tuple(subjects), conduct=Ratings(*conduct), absences=absences)


# --- Term average ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regular", "expected"),
    [
        # (Σ regular + 2·7 + 3·6) / (n + 5)
        ((8, 9), "7.0"),  # 49 / 7
        ((8, 9, 10), "7.4"),  # 59 / 8 = 7.375
        ((8, 9, 10, 5), "7.1"),  # 64 / 9 = 7.11
    ],
    ids=["2 regular scores", "3 regular scores", "4 regular scores"],
)
def test_it_divides_the_term_total_by_the_number_of_regular_scores_plus_five(regular, expected):
    assert term_average(term(regular, mid=7, end=6)) == Decimal(expected)


def test_it_weights_the_mid_term_twice_and_the_end_term_three_times():
    # (7 + 8 + 2·6 + 3·9) / 7 = 54 / 7 = 7.71
    assert term_average(term((7, 8), mid=6, end=9)) == Decimal("7.7")
    # Swapping mid and end changes the result: (15 + 18 + 18) / 7 = 7.29
    assert term_average(term((7, 8), mid=9, end=6)) == Decimal("7.3")


@pytest.mark.parametrize(
    ("regular", "mid", "end", "expected"),
    [
        ((7.2, 8, 8), 7, 8, "7.7"),  # 61.2 / 8 = 7.65
        ((8, 8, 8), 9, 8, "8.3"),  # 66 / 8 = 8.25
        ((6, 6, 6.6), 6, 7, "6.5"),  # 51.6 / 8 = 6.45
    ],
    ids=["7.65", "8.25", "6.45"],
)
def test_it_rounds_a_term_average_on_the_half_up(regular, mid, end, expected):
    assert term_average(term(regular, mid, end)) == Decimal(expected)


def test_it_rounds_exactly_where_binary_floats_fall_just_short_of_the_half():
    regular, mid, end = (7.5, 9.5, 7.7), 6.1, 8.1
    # In floats the total is 61.199999..., and the average 7.6499999999999995 rounds down.
    in_floats = (sum(regular) + 2 * mid + 3 * end) / 8
    assert in_floats < 7.65
    assert round_half_up(to_decimal(in_floats)) == Decimal("7.6")
    assert term_average(term(regular, mid, end)) == Decimal("7.7")


def test_it_reads_a_float_through_its_text_so_that_a_half_stays_a_half():
    held = 4.35
    assert Decimal(held) < Decimal("4.35")  # what the float really holds: 4.3499999...
    assert Decimal(held).quantize(Decimal("0.1"), rounding="ROUND_HALF_UP") == Decimal("4.3")
    assert to_decimal(held) == Decimal("4.35")
    assert round_half_up(to_decimal(held)) == Decimal("4.4")


def test_it_rounds_halves_up_and_the_rest_to_the_nearest_tenth():
    assert round_half_up(to_decimal(7.65)) == Decimal("7.7")
    assert round_half_up(Decimal("8.25")) == Decimal("8.3")
    assert round_half_up(Decimal("6.45")) == Decimal("6.5")
    assert round_half_up(Decimal("6.4499")) == Decimal("6.4")


def test_it_keeps_one_decimal_on_whole_averages():
    assert str(term_average(flat(8))) == "8.0"
    assert str(term_average(flat(10))) == "10.0"
    assert str(term_average(flat(0))) == "0.0"


def test_it_is_not_swayed_by_the_callers_decimal_context():
    import decimal

    with decimal.localcontext() as context:
        context.prec = 2
        context.rounding = decimal.ROUND_DOWN
        assert term_average(term((7.2, 8, 8), 7, 8)) == Decimal("7.7")


# --- Year average ----------------------------------------------------------------------------


def test_it_weights_term_two_twice_in_the_year_average():
    # (6.0 + 2·9.0) / 3 = 8.0; the other way round (9.0 + 12.0) / 3 = 7.0
    assert year_average(Decimal("6.0"), Decimal("9.0")) == Decimal("8.0")
    assert year_average(Decimal("9.0"), Decimal("6.0")) == Decimal("7.0")


def test_it_rounds_the_year_average_to_the_nearest_tenth():
    # (a + 2b) / 3 of one-decimal terms is never exactly on a half: it rounds thirds.
    assert year_average(Decimal("7.5"), Decimal("7.8")) == Decimal("7.7")  # 23.1 / 3, exact
    assert year_average(Decimal("6.5"), Decimal("6.4")) == Decimal("6.4")  # 19.3 / 3 = 6.433
    assert year_average(Decimal("7.8"), Decimal("7.0")) == Decimal("7.3")  # 21.8 / 3 = 7.267


def test_it_computes_the_year_average_from_the_rounded_term_averages():
    term1 = term((5.4, 6.3, 5.9), 8.1, 9.4)  # 62.0 / 8 = 7.75 -> 7.8
    term2 = term((6.8, 7.4, 9.0), 7.3, 6.0)  # 55.8 / 8 = 6.975 -> 7.0
    one_subject = SecondaryStudent(
        subjects=(ScoredSubject("toan", term1, term2),), conduct=Ratings(T, T, T), absences=0
    )
    subject = evaluate(one_subject).subjects[0]
    assert (subject.term1, subject.term2) == (Decimal("7.8"), Decimal("7.0"))
    # (7.8 + 14.0) / 3 = 7.27 -> 7.3; the unrounded (7.75 + 13.95) / 3 = 7.23 would give 7.2.
    assert subject.year == Decimal("7.3")


# --- Learning result -------------------------------------------------------------------------


def test_it_rates_tot_with_six_subjects_at_8_and_the_rest_at_6_5():
    assert learning_result(dec(8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 6.5, 6.5), ALL_PASSED) == T


def test_it_rates_kha_when_one_subject_is_just_below_6_5():
    assert learning_result(dec(9, 9, 9, 9, 9, 9, 6.4, 7), ALL_PASSED) == K


def test_it_rates_kha_when_only_five_subjects_reach_8():
    assert learning_result(dec(8.0, 8.0, 8.0, 8.0, 8.0, 7.9, 7, 7), ALL_PASSED) == K


def test_it_rates_kha_with_six_subjects_at_6_5_and_the_rest_at_5():
    assert learning_result(dec(6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 5.0, 5.0), ALL_PASSED) == K


def test_it_rates_dat_when_one_subject_is_just_below_5():
    assert learning_result(dec(9, 9, 9, 9, 9, 9, 4.9, 9), ALL_PASSED) == D


def test_it_rates_dat_when_only_five_subjects_reach_6_5():
    assert learning_result(dec(6.5, 6.5, 6.5, 6.5, 6.5, 6.4, 5, 5), ALL_PASSED) == D


def test_it_rates_dat_with_six_subjects_at_5_and_none_below_3_5():
    assert learning_result(dec(5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 3.5, 3.5), ALL_PASSED) == D


def test_it_rates_chua_dat_when_one_subject_is_just_below_3_5():
    assert learning_result(dec(9, 9, 9, 9, 9, 9, 9, 3.4), ALL_PASSED) == CD


def test_it_rates_chua_dat_when_only_five_subjects_reach_5():
    assert learning_result(dec(5.0, 5.0, 5.0, 5.0, 5.0, 4.9, 4.9, 4.9), ALL_PASSED) == CD


def test_it_allows_exactly_six_scored_subjects():
    assert learning_result(dec(8, 8, 8, 8, 8, 8), ALL_PASSED) == T


def test_it_rates_chua_dat_with_fewer_than_six_scored_subjects_whatever_the_scores():
    # Read literally, "at least 6 of them" cannot be met with 5 subjects (see learning_result).
    assert learning_result(dec(10, 10, 10, 10, 10), ALL_PASSED) == CD
    assert learning_result([], ALL_PASSED) == CD


def test_it_keeps_a_tot_student_at_dat_when_one_comment_subject_is_chua_dat():
    assert learning_result(dec(9, 9, 9, 9, 9, 9, 9, 9), [PASSED, FAILED, PASSED, PASSED]) == D


def test_it_rates_chua_dat_when_two_comment_subjects_are_chua_dat():
    assert learning_result(dec(9, 9, 9, 9, 9, 9, 9, 9), [PASSED, FAILED, FAILED, PASSED]) == CD


def test_it_rates_with_comment_subjects_alone_as_chua_dat():
    assert learning_result([], [PASSED, PASSED]) == CD


# --- Titles ----------------------------------------------------------------------------------


def test_it_names_xuat_sac_with_six_year_averages_at_9():
    averages = dec(9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 6.5, 8)
    assert title(conduct_year=T, learning_year=T, year_averages=averages) == Title.EXCELLENT


def test_it_names_gioi_when_the_sixth_best_year_average_is_just_below_9():
    averages = dec(9.0, 9.0, 9.0, 9.0, 10.0, 8.9, 8.9, 8)
    assert title(conduct_year=T, learning_year=T, year_averages=averages) == Title.GOOD


@pytest.mark.parametrize(("conduct", "learning"), [(K, T), (T, K), (D, T), (T, CD)])
def test_it_gives_no_title_unless_conduct_and_learning_are_both_tot(conduct, learning):
    averages = dec(10, 10, 10, 10, 10, 10, 10, 10)
    assert title(conduct_year=conduct, learning_year=learning, year_averages=averages) is None


def test_it_names_an_excellent_student_end_to_end():
    result = evaluate(student([9.5, 9.0, 9.0, 9.0, 9.0, 9.0, 8.0, 7.0]))
    assert result.learning == Ratings(T, T, T)
    assert result.title == Title.EXCELLENT
    assert result.outcome == Outcome.PROMOTED


# --- Outcomes --------------------------------------------------------------------------------


def test_it_promotes_with_45_absences():
    assert outcome(conduct_year=T, learning_year=T, absences=45) == Outcome.PROMOTED


def test_it_holds_back_with_46_absences_whatever_the_results():
    assert outcome(conduct_year=T, learning_year=T, absences=46) == Outcome.REPEAT
    assert outcome(conduct_year=CD, learning_year=CD, absences=46) == Outcome.REPEAT


def test_it_promotes_with_conduct_and_learning_at_dat():
    assert outcome(conduct_year=D, learning_year=D, absences=0) == Outcome.PROMOTED


def test_it_sends_conduct_chua_dat_to_summer_training():
    assert outcome(conduct_year=CD, learning_year=T, absences=0) == Outcome.SUMMER_TRAINING
    assert outcome(conduct_year=CD, learning_year=CD, absences=0) == Outcome.SUMMER_TRAINING


def test_it_sends_learning_chua_dat_with_conduct_at_dat_to_reassessment():
    assert outcome(conduct_year=D, learning_year=CD, absences=45) == Outcome.REASSESSMENT


def test_it_decides_the_outcome_on_the_year_not_on_term_two():
    result = evaluate(student([7] * 8, conduct=(CD, CD, K), absences=3))
    assert result.outcome == Outcome.PROMOTED


# --- Whole students --------------------------------------------------------------------------


def test_it_rates_each_term_on_that_terms_averages():
    # Term I all 5.0 (Khá needs 6 at 6.5: Đạt); term II all 8.0 (Tốt); the year (5 + 16) / 3 = 7.0.
    result = evaluate(student([8.0] * 8, term1=[5.0] * 8))
    assert result.learning == Ratings(D, T, K)
    assert {s.year for s in result.subjects if s.scored} == {Decimal("7.0")}


def test_it_takes_a_comment_subjects_year_result_from_term_two():
    result = evaluate(student([9] * 8, comments=[("CĐ", "Đ"), ("Đ", "CĐ"), ("Đ", "Đ"), ("Đ", "Đ")]))
    rows = {s.code: (s.term1, s.term2, s.year) for s in result.subjects if not s.scored}
    assert rows["c0"] == (FAILED, PASSED, PASSED)
    assert rows["c1"] == (PASSED, FAILED, FAILED)
    # One Chưa đạt per term and for the year: Đạt throughout, even with 9s.
    assert result.learning == Ratings(D, D, D)


def test_it_judges_the_year_on_term_two_comment_grades():
    result = evaluate(student([9] * 8, comments=[("CĐ", "Đ"), ("CĐ", "Đ"), ("Đ", "Đ"), ("Đ", "Đ")]))
    assert result.learning == Ratings(CD, T, T)
    assert result.title == Title.EXCELLENT


def test_it_keeps_the_subjects_in_input_order():
    result = evaluate(student([7, 8, 9, 7, 8, 9]))
    assert [s.code for s in result.subjects] == ["s0", "s1", "s2", "s3", "s4", "s5", "c0", "c1", "c2", "c3"]
