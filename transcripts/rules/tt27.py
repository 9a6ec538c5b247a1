"""Primary assessment, Thông tư 27/2020/TT-BGDĐT, domain.md §3: the end-of-year result.

Pure functions over frozen dataclasses. The inputs are assumed valid (levels from the lists below,
test scores whole numbers 1-10): the boundary that reads them, such as `manage.py evaluate`, checks
them first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

CODE = "tt27"
CIRCULAR = "Thông tư 27/2020/TT-BGDĐT"
# Periodic tests are scored in whole numbers from 1 to 10 (no 0, no decimals).
TEST_SCORE_MIN = 1
TEST_SCORE_MAX = 10

_EXCELLENT_TEST = 9
_GOOD_TEST = 7
_PASS_TEST = 5


class SubjectLevel(StrEnum):
    """A subject's or activity's level."""

    GOOD = "T"  # Hoàn thành tốt
    DONE = "H"  # Hoàn thành
    NOT_DONE = "C"  # Chưa hoàn thành


class QualityLevel(StrEnum):
    """A quality's (phẩm chất) or competency's (năng lực) level."""

    GOOD = "T"  # Tốt
    ACHIEVED = "Đ"  # Đạt
    NEEDS_EFFORT = "C"  # Cần cố gắng


class YearResult(StrEnum):
    EXCELLENT = "HTXS"  # Hoàn thành xuất sắc
    GOOD = "HTT"  # Hoàn thành tốt
    DONE = "HT"  # Hoàn thành
    NOT_DONE = "CHT"  # Chưa hoàn thành


@dataclass(frozen=True, slots=True)
class PrimarySubject:
    """A subject's end-of-year level, and its end-of-year test score for the subjects with a test."""

    code: str
    level: SubjectLevel
    test_score: int | None = None


@dataclass(frozen=True, slots=True)
class PrimaryPupil:
    """What the rules need about one pupil's year. The mappings are code -> level; not mutated."""

    subjects: tuple[PrimarySubject, ...]
    qualities: Mapping[str, QualityLevel]
    competencies: Mapping[str, QualityLevel]


@dataclass(frozen=True, slots=True)
class PrimaryResult:
    result: YearResult

    @property
    def completed(self) -> bool:
        """Hoàn thành chương trình lớp học: any result but Chưa hoàn thành."""
        return self.result != YearResult.NOT_DONE


def year_result(pupil: PrimaryPupil) -> YearResult:
    """The end-of-year result.

    - Hoàn thành xuất sắc: every subject T, every quality and competency T, every test >= 9;
    - Hoàn thành tốt: every subject T, every quality and competency T, every test >= 7;
    - Hoàn thành: every subject T or H, every quality and competency T or Đ, every test >= 5;
    - Chưa hoàn thành otherwise.

    "Every test" is every end-of-year test the pupil has: a subject without a test score adds no
    condition.
    """
    levels = {subject.level for subject in pupil.subjects}
    marks = set(pupil.qualities.values()) | set(pupil.competencies.values())
    lowest_test = min(
        (subject.test_score for subject in pupil.subjects if subject.test_score is not None),
        default=TEST_SCORE_MAX,
    )
    if levels <= {SubjectLevel.GOOD} and marks <= {QualityLevel.GOOD}:
        if lowest_test >= _EXCELLENT_TEST:
            return YearResult.EXCELLENT
        if lowest_test >= _GOOD_TEST:
            return YearResult.GOOD
    if (
        levels <= {SubjectLevel.GOOD, SubjectLevel.DONE}
        and marks <= {QualityLevel.GOOD, QualityLevel.ACHIEVED}
        and lowest_test >= _PASS_TEST
    ):
        return YearResult.DONE
    return YearResult.NOT_DONE


def evaluate(pupil: PrimaryPupil) -> PrimaryResult:
    """The rule set's entry point: the pupil's year result."""
    return PrimaryResult(result=year_result(pupil))
