"""TT27/2020 (primary): the end-of-year result, at the test-score lines 9, 7 and 5 (domain.md §3)."""

from __future__ import annotations

import pytest

from transcripts.rules.tt27 import (
    PrimaryPupil,
    PrimaryResult,
    PrimarySubject,
    QualityLevel,
    SubjectLevel,
    YearResult,
    evaluate,
    year_result,
)

QUALITIES = ("yeu_nuoc", "nhan_ai", "cham_chi", "trung_thuc", "trach_nhiem")
COMPETENCIES = ("tu_chu_tu_hoc", "giao_tiep_hop_tac", "gq_van_de_sang_tao", "ngon_ngu", "tinh_toan")


def pupil(
    tests: dict[str, int] | None = None,
    *,
    levels: dict[str, str] | None = None,
    qualities: dict[str, str] | None = None,
    competencies: dict[str, str] | None = None,
) -> PrimaryPupil:
    """A grade 5 pupil, everything T and every test 10 unless told otherwise."""
    tested = {"tieng_viet": 10, "toan": 10, "khoa_hoc": 10, "lich_su_dia_li": 10} | (tests or {})
    subject_levels = {code: "T" for code in [*tested, "dao_duc", "gdtc", "hdtn"]} | (levels or {})
    subjects = tuple(
        PrimarySubject(code, SubjectLevel(level), tested.get(code)) for code, level in subject_levels.items()
    )
    return PrimaryPupil(
        subjects=subjects,
        qualities={code: QualityLevel.GOOD for code in QUALITIES} | _levels(qualities),
        competencies={code: QualityLevel.GOOD for code in COMPETENCIES} | _levels(competencies),
    )


def _levels(given: dict[str, str] | None) -> dict[str, QualityLevel]:
    return {code: QualityLevel(level) for code, level in (given or {}).items()}


def test_it_rates_hoan_thanh_xuat_sac_with_every_test_at_9():
    assert year_result(pupil({"toan": 9, "tieng_viet": 9})) == YearResult.EXCELLENT


def test_it_rates_hoan_thanh_tot_when_one_test_is_8():
    assert year_result(pupil({"toan": 8})) == YearResult.GOOD


def test_it_rates_hoan_thanh_tot_with_a_test_at_7():
    assert year_result(pupil({"toan": 7})) == YearResult.GOOD


def test_it_rates_hoan_thanh_when_one_test_is_6():
    assert year_result(pupil({"toan": 6})) == YearResult.DONE


def test_it_rates_hoan_thanh_with_a_test_at_5():
    assert year_result(pupil({"toan": 5})) == YearResult.DONE


def test_it_rates_chua_hoan_thanh_when_one_test_is_4():
    assert year_result(pupil({"toan": 4})) == YearResult.NOT_DONE


def test_it_rates_hoan_thanh_when_one_subject_is_h_whatever_the_tests():
    assert year_result(pupil(levels={"dao_duc": "H"})) == YearResult.DONE


def test_it_rates_chua_hoan_thanh_when_one_subject_is_c():
    assert year_result(pupil(levels={"gdtc": "C"})) == YearResult.NOT_DONE


MARKS = [("qualities", "trung_thuc"), ("competencies", "ngon_ngu")]


@pytest.mark.parametrize(("kind", "code"), MARKS)
def test_it_rates_hoan_thanh_when_one_quality_or_competency_is_dat(kind, code):
    assert year_result(pupil(**{kind: {code: "Đ"}})) == YearResult.DONE


@pytest.mark.parametrize(("kind", "code"), MARKS)
def test_it_rates_chua_hoan_thanh_when_one_quality_or_competency_needs_effort(kind, code):
    assert year_result(pupil(**{kind: {code: "C"}})) == YearResult.NOT_DONE


def test_it_sets_no_condition_on_a_subject_without_a_test():
    subjects = (PrimarySubject("dao_duc", SubjectLevel.GOOD), PrimarySubject("toan", SubjectLevel.GOOD, 9))
    qualities = {"yeu_nuoc": QualityLevel.GOOD}
    result = year_result(PrimaryPupil(subjects=subjects, qualities=qualities, competencies=qualities))
    assert result == YearResult.EXCELLENT


def test_it_completes_the_grade_unless_the_result_is_chua_hoan_thanh():
    assert evaluate(pupil({"toan": 5})) == PrimaryResult(YearResult.DONE)
    assert evaluate(pupil({"toan": 5})).completed
    assert not evaluate(pupil({"toan": 4})).completed
