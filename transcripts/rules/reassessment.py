"""TT22/TT43 after the summer: re-assessment (kiểm tra lại) and re-training (rèn luyện trong hè).

A student who did not reach Đạt is re-assessed in August: in the subjects graded CĐ or with a
year average below 5.0, the re-assessment result replaces the year's value, and the learning
result is computed again; a student sent to summer re-training gets a new conduct result from it.
With the new results the student is promoted when both reach Đạt, and repeats the grade
otherwise (domain.md §3). Pure: dataclasses in, dataclasses out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from .common import PASSING_RATINGS, CommentGrade, Rating
from .tt22 import MIN_SUBJECTS, Outcome, SecondaryResult, learning_result

_PASS_AVERAGE = Decimal("5.0")


def subjects_to_retake(result: SecondaryResult) -> list[str]:
    """The subjects a re-assessment covers: graded CĐ, or with a year average below 5.0."""
    # A scored subject's year value is its average (a Decimal), a comment one's a CommentGrade.
    return [
        s.code
        for s in result.subjects
        if (s.scored and cast(Decimal, s.year) < _PASS_AVERAGE)
        or (not s.scored and s.year == CommentGrade.NOT_ACHIEVED)
    ]


@dataclass(frozen=True, slots=True)
class AfterSummer:
    learning_year: Rating
    conduct_year: Rating
    outcome: Outcome
    year_values: Mapping[str, Decimal | CommentGrade]


def after_summer(
    result: SecondaryResult,
    *,
    conduct_year: Rating,
    retakes: Mapping[str, Decimal | CommentGrade],
    conduct_after_training: Rating | None = None,
    min_subjects: int = MIN_SUBJECTS,
) -> AfterSummer:
    """The year's results once the August re-assessment and re-training are in.

    `retakes` maps subject codes to their re-assessment result (a score 0-10 for a scored
    subject, Đ/CĐ for a comment one); only subjects in subjects_to_retake() are taken.
    """
    allowed = set(subjects_to_retake(result))
    values: dict[str, Decimal | CommentGrade] = {}
    scored: list[Decimal] = []
    comments: list[str] = []
    for subject in result.subjects:
        value = retakes.get(subject.code, subject.year) if subject.code in allowed else subject.year
        values[subject.code] = value
        # A score for a scored subject, Đ/CĐ for a comment one (see the docstring).
        if subject.scored:
            scored.append(cast(Decimal, value))
        else:
            comments.append(cast(CommentGrade, value))
    learning = learning_result(scored, comments, min_subjects=min_subjects)
    conduct = conduct_after_training or conduct_year
    promoted = learning in PASSING_RATINGS and conduct in PASSING_RATINGS
    return AfterSummer(
        learning_year=learning,
        conduct_year=conduct,
        outcome=Outcome.PROMOTED if promoted else Outcome.REPEAT,
        year_values=values,
    )
