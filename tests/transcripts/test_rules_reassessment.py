"""TT22 after the summer: the re-assessment replaces the failed subjects' year values."""

from decimal import Decimal

from transcripts.rules.common import CommentGrade, Rating
from transcripts.rules.reassessment import after_summer, subjects_to_retake
from transcripts.rules.tt22 import Outcome, Ratings, ScoredSubject, SecondaryStudent, TermScores, evaluate

D = Decimal


def scored(code: str, score: str) -> ScoredSubject:
    term = TermScores(regular=(D(score), D(score)), mid=D(score), end=D(score))
    return ScoredSubject(code=code, term1=term, term2=term)


def student(weak: str = "4.0") -> SecondaryStudent:
    subjects = (scored("toan", weak), *(scored(f"m{i}", "6.0") for i in range(7)))
    return SecondaryStudent(
        subjects=subjects, conduct=Ratings(Rating.FAIR, Rating.FAIR, Rating.FAIR), absences=2
    )


def test_a_student_below_3_5_in_one_subject_is_sent_to_reassessment_in_that_subject():
    result = evaluate(student("3.0"))
    assert result.learning.year == Rating.NOT_ACHIEVED
    assert result.outcome == Outcome.REASSESSMENT
    assert subjects_to_retake(result) == ["toan"]


def test_a_passed_reassessment_promotes_the_student():
    result = evaluate(student("3.0"))
    after = after_summer(result, conduct_year=Rating.FAIR, retakes={"toan": D("5.5"), "m0": D("1.0")})
    assert after.learning_year == Rating.ACHIEVED
    assert after.outcome == Outcome.PROMOTED
    # Only the subjects the re-assessment covers change.
    assert after.year_values["m0"] == D("6.0")


def test_a_failed_reassessment_means_repeating_the_grade():
    result = evaluate(student("3.0"))
    after = after_summer(result, conduct_year=Rating.FAIR, retakes={"toan": D("3.4")})
    assert after.outcome == Outcome.REPEAT


def test_summer_retraining_replaces_the_conduct_result():
    weak_conduct = SecondaryStudent(
        subjects=tuple(scored(f"m{i}", "7.0") for i in range(8)),
        conduct=Ratings(Rating.NOT_ACHIEVED, Rating.NOT_ACHIEVED, Rating.NOT_ACHIEVED),
        absences=0,
    )
    result = evaluate(weak_conduct)
    assert result.outcome == Outcome.SUMMER_TRAINING
    assert (
        after_summer(
            result, conduct_year=Rating.NOT_ACHIEVED, retakes={}, conduct_after_training=Rating.ACHIEVED
        ).outcome
        == Outcome.PROMOTED
    )
    assert after_summer(result, conduct_year=Rating.NOT_ACHIEVED, retakes={}).outcome == Outcome.REPEAT


def test_a_comment_subject_not_passed_can_be_retaken():
    from transcripts.rules.tt22 import CommentSubject

    s = SecondaryStudent(
        subjects=(
            *(scored(f"m{i}", "7.0") for i in range(8)),
            CommentSubject("gdtc", CommentGrade.NOT_ACHIEVED, CommentGrade.NOT_ACHIEVED),
            CommentSubject("hdtn", CommentGrade.NOT_ACHIEVED, CommentGrade.NOT_ACHIEVED),
        ),
        conduct=Ratings(Rating.GOOD, Rating.GOOD, Rating.GOOD),
        absences=0,
    )
    result = evaluate(s)
    assert result.outcome == Outcome.REASSESSMENT
    assert set(subjects_to_retake(result)) == {"gdtc", "hdtn"}
    after = after_summer(result, conduct_year=Rating.GOOD, retakes={"gdtc": CommentGrade.ACHIEVED})
    assert after.learning_year == Rating.ACHIEVED  # one comment subject CĐ is still Đạt
