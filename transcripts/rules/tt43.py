"""Continuing education (GDTX), Thông tư 43/2021/TT-BGDĐT, domain.md §3.

The same formulas, levels, titles and outcomes as TT22, except that every "at least 6 subjects"
threshold (Tốt, Khá, Đạt, Xuất sắc) becomes "at least 5". It is TT22's code with that one
parameter, not a copy: a correction to TT22's reading applies here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from . import tt22
from .common import Rating
from .tt22 import ScoresInTenths, SecondaryResult, SecondaryStudent, Title, YearInTenths

CODE = "tt43"
CIRCULAR = "Thông tư 43/2021/TT-BGDĐT"
MIN_SUBJECTS = 5


def learning_result(scored: Sequence[Decimal], comments: Sequence[str]) -> Rating:
    """TT22's learning result with 5 subjects; see tt22.learning_result (fewer than 5 scored
    subjects can only be Chưa đạt)."""
    return tt22.learning_result(scored, comments, min_subjects=MIN_SUBJECTS)


def title(*, conduct_year: Rating, learning_year: Rating, year_averages: Sequence[Decimal]) -> Title | None:
    """TT22's titles with 5 subjects at ĐTBmcn >= 9.0 for Xuất sắc."""
    return tt22.title(
        conduct_year=conduct_year,
        learning_year=learning_year,
        year_averages=year_averages,
        min_subjects=MIN_SUBJECTS,
    )


def evaluate(student: SecondaryStudent) -> SecondaryResult:
    """TT22's evaluation with the thresholds of TT43."""
    return tt22.evaluate(student, min_subjects=MIN_SUBJECTS)


def evaluate_in_tenths(
    scored: Iterable[ScoresInTenths],
    comments1: Sequence[str],
    comments2: Sequence[str],
    *,
    conduct_year: Rating,
    absences: int,
) -> YearInTenths:
    """TT22's evaluate_in_tenths with the thresholds of TT43."""
    return tt22.evaluate_in_tenths(
        scored, comments1, comments2, conduct_year=conduct_year, absences=absences, min_subjects=MIN_SUBJECTS
    )
