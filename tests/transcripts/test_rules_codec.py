"""The rules' results to and from their stored JSON (transcripts.rules.codec): exact round trips,
and today's stored rows decode."""

import json
from decimal import Decimal

import pytest

from transcripts.rules import tt27
from transcripts.rules.codec import (
    CodecError,
    StoredAfterSummer,
    after_summer_from_json,
    result_from_json,
    result_to_json,
    with_after_summer,
)
from transcripts.rules.common import CommentGrade, Rating
from transcripts.rules.reassessment import after_summer, subjects_to_retake
from transcripts.rules.tt22 import (
    CommentSubject,
    Outcome,
    Ratings,
    ScoredSubject,
    SecondaryResult,
    SecondaryStudent,
    TermScores,
    Title,
    evaluate,
)
from transcripts.rules.tt27 import (
    PrimaryPupil,
    PrimaryResult,
    PrimarySubject,
    QualityLevel,
    SubjectLevel,
    YearResult,
)

D = Decimal

# A row as results.py stored it before the codec existed (the `_as_json` shape), verbatim.
STORED_SECONDARY = {
    "subjects": {
        "toan": {"term1": "3.0", "term2": "3.0", "year": "3.0"},
        "van": {"term1": "10.0", "term2": "6.5", "year": "7.7"},
        "gdtc": {"term1": "Đ", "term2": "CĐ", "year": "CĐ"},
    },
    "learning": {"term1": "CĐ", "term2": "CĐ", "year": "CĐ"},
    "title": None,
    "outcome": "reassessment",
}
STORED_PRIMARY = {"result": "HTT", "completed": True}


def scored(code: str, score: str) -> ScoredSubject:
    term = TermScores(regular=(D(score), D(score)), mid=D(score), end=D(score))
    return ScoredSubject(code=code, term1=term, term2=term)


def student(weak: str = "4.0", conduct: Rating = Rating.FAIR) -> SecondaryStudent:
    subjects = (
        scored("toan", weak),
        *(scored(f"m{i}", "9.5") for i in range(7)),
        CommentSubject(code="gdtc", term1=CommentGrade.ACHIEVED, term2=CommentGrade.ACHIEVED),
    )
    return SecondaryStudent(subjects=subjects, conduct=Ratings(conduct, conduct, conduct), absences=2)


@pytest.mark.parametrize(
    ("weak", "conduct"),
    [("3.0", Rating.FAIR), ("9.5", Rating.GOOD), ("7.65", Rating.GOOD), ("4.0", Rating.NOT_ACHIEVED)],
)
def test_a_secondary_result_comes_back_from_its_json_exactly(weak, conduct):
    result = evaluate(student(weak, conduct))
    stored = json.loads(json.dumps(result_to_json(result)))  # as the JSONField keeps it
    assert result_from_json(stored) == result


def test_a_primary_result_comes_back_from_its_json_exactly():
    for level in SubjectLevel:
        pupil = PrimaryPupil(
            subjects=(PrimarySubject("tv", level, 9),),
            qualities={"q": QualityLevel.GOOD},
            competencies={"c": QualityLevel.GOOD},
        )
        result = tt27.evaluate(pupil)
        assert result_from_json(json.loads(json.dumps(result_to_json(result)))) == result


def test_a_row_stored_before_the_codec_decodes_to_typed_values():
    result = result_from_json(STORED_SECONDARY)
    assert isinstance(result, SecondaryResult)
    toan, van, gdtc = result.subjects
    assert (toan.code, toan.scored, toan.year) == ("toan", True, D("3.0"))
    assert (van.term1, van.term2, van.year) == (D("10.0"), D("6.5"), D("7.7"))
    assert (gdtc.scored, gdtc.term1, gdtc.year) == (False, CommentGrade.ACHIEVED, CommentGrade.NOT_ACHIEVED)
    assert result.learning == Ratings(Rating.NOT_ACHIEVED, Rating.NOT_ACHIEVED, Rating.NOT_ACHIEVED)
    assert result.title is None
    assert result.outcome is Outcome.REASSESSMENT
    assert subjects_to_retake(result) == ["toan", "gdtc"]


def test_a_row_stored_before_the_codec_is_written_back_byte_for_byte():
    for stored in (STORED_SECONDARY, STORED_PRIMARY):
        encoded = result_to_json(result_from_json(stored))
        assert json.dumps(encoded, ensure_ascii=False) == json.dumps(stored, ensure_ascii=False)


def test_a_primary_row_stored_before_the_codec_decodes():
    assert result_from_json(STORED_PRIMARY) == PrimaryResult(result=YearResult.GOOD)


def test_a_title_is_stored_by_its_value_and_read_back_as_the_enum():
    result = evaluate(student("9.5", Rating.GOOD))
    assert result.title is Title.EXCELLENT
    assert result_to_json(result)["title"] == "xuat_sac"
    assert result_from_json(result_to_json(result)).title is Title.EXCELLENT


def test_augusts_decision_is_added_beside_the_june_results_and_read_back():
    result = evaluate(student("3.0"))
    after = after_summer(result, conduct_year=Rating.FAIR, retakes={"toan": D("5.5")})
    data = with_after_summer(result_to_json(result), StoredAfterSummer.of(after, retaken=["toan"]))
    assert data["after_summer"] == {
        "learning_year": "K",
        "conduct_year": "K",
        "outcome": "promoted",
        "retaken": ["toan"],
    }
    assert result_from_json(data) == result  # the June results are kept as they were
    assert after_summer_from_json(data) == StoredAfterSummer(
        Rating.FAIR, Rating.FAIR, Outcome.PROMOTED, ("toan",)
    )
    assert after_summer_from_json(result_to_json(result)) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "neither a secondary nor a primary result"),
        ({**STORED_SECONDARY, "outcome": "expelled"}, "malformed"),
        (
            {**STORED_SECONDARY, "subjects": {"toan": {"term1": "x", "term2": "3.0", "year": "3.0"}}},
            "'x' is neither an average nor a comment grade",
        ),
        ({"result": "A+"}, "malformed"),
    ],
)
def test_stored_results_in_another_shape_are_refused_with_the_reason(data, reason):
    with pytest.raises(CodecError, match=reason):
        result_from_json(data)


def test_the_subjects_re_taken_in_august_are_read_from_a_row_stored_before_the_codec():
    from transcripts.models import StudentYear
    from transcripts.selectors import student_year_outcome, student_year_retakes

    year = StudentYear(results=STORED_SECONDARY)
    assert student_year_outcome(year) is Outcome.REASSESSMENT
    assert student_year_retakes(year) == ["toan", "gdtc"]
    # Re-training only (conduct): no subject is re-taken; nothing computed: nothing either.
    assert student_year_retakes(StudentYear(results={**STORED_SECONDARY, "outcome": "summer_training"})) == []
    assert student_year_retakes(StudentYear(results={})) == []
    assert student_year_outcome(StudentYear(results=STORED_PRIMARY)) is None
