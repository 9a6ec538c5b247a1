"""The rules' results to and from the JSON stored in StudentYear.results.

The stored shape is the `evaluate` command's (transcripts/evaluate), unchanged since the first
rows were written, so every existing row decodes:

- secondary (TT22/TT43): {"subjects": {code: {"term1", "term2", "year"}}, "learning": {"term1",
  "term2", "year"}, "title": "xuat_sac" | "gioi" | null, "outcome": "promoted" | ...}; a scored
  subject's values are Decimals as text ("7.5"), a comment subject's are "Đ" / "CĐ", which is how
  a decoder tells them apart (no average is ever a letter);
- primary (TT27): {"result": "HTXS" | ..., "completed": bool};
- after August's close, a secondary result also holds {"after_summer": {"learning_year",
  "conduct_year", "outcome", "retaken": [codes]}}.

Decimals travel as text and enums by value, so `result_from_json(result_to_json(r)) == r`. The
shape carries no version key: it has had one shape only, and adding a key now would make today's
rows and tomorrow's differ for nothing; a second shape would be recognised by its own keys.
Pure: no ORM, no settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .common import CommentGrade, Rating
from .reassessment import AfterSummer
from .tt22 import Outcome, Ratings, SecondaryResult, SubjectResult, Title
from .tt27 import PrimaryResult, YearResult

AFTER_SUMMER_KEY = "after_summer"
# The outcomes decided only in August (re-assessment, re-training).
SUMMER_OUTCOMES = frozenset({Outcome.REASSESSMENT, Outcome.SUMMER_TRAINING})


class CodecError(ValueError):
    """Stored results that are not in the shape this module writes."""


@dataclass(frozen=True, slots=True)
class StoredAfterSummer:
    """August's decision as stored: the new results, the outcome, the subjects re-taken."""

    learning_year: Rating
    conduct_year: Rating
    outcome: Outcome
    retaken: tuple[str, ...]

    @classmethod
    def of(cls, after: AfterSummer, *, retaken: list[str] | tuple[str, ...]) -> StoredAfterSummer:
        return cls(after.learning_year, after.conduct_year, after.outcome, tuple(sorted(retaken)))


def _value_to_json(value: Decimal | CommentGrade) -> str:
    return str(value)


def _value_from_json(text: str) -> tuple[bool, Decimal | CommentGrade]:
    """(scored, value): a comment grade by its letters, otherwise a Decimal."""
    if text in CommentGrade._value2member_map_:
        return False, CommentGrade(text)
    try:
        return True, Decimal(text)
    except (InvalidOperation, TypeError):
        raise CodecError(f"{text!r} is neither an average nor a comment grade.") from None


def result_to_json(result: SecondaryResult | PrimaryResult) -> dict[str, Any]:
    """The result as stored in StudentYear.results."""
    if isinstance(result, SecondaryResult):
        return {
            "subjects": {
                s.code: {
                    "term1": _value_to_json(s.term1),
                    "term2": _value_to_json(s.term2),
                    "year": _value_to_json(s.year),
                }
                for s in result.subjects
            },
            "learning": {
                "term1": str(result.learning.term1),
                "term2": str(result.learning.term2),
                "year": str(result.learning.year),
            },
            "title": str(result.title) if result.title else None,
            "outcome": str(result.outcome),
        }
    if isinstance(result, PrimaryResult):
        return {"result": str(result.result), "completed": result.completed}
    raise TypeError(f"not a rules' result: {type(result).__name__}")


def result_from_json(data: Mapping[str, Any]) -> SecondaryResult | PrimaryResult:
    """The typed result of stored results (the after-summer part, if any, is left aside)."""
    try:
        if "learning" in data:
            subjects = []
            for code, values in data["subjects"].items():
                scored, year = _value_from_json(values["year"])
                subjects.append(
                    SubjectResult(
                        code=code,
                        scored=scored,
                        term1=_value_from_json(values["term1"])[1],
                        term2=_value_from_json(values["term2"])[1],
                        year=year,
                    )
                )
            learning = data["learning"]
            return SecondaryResult(
                subjects=tuple(subjects),
                learning=Ratings(
                    Rating(learning["term1"]), Rating(learning["term2"]), Rating(learning["year"])
                ),
                title=Title(data["title"]) if data.get("title") else None,
                outcome=Outcome(data["outcome"]),
            )
        if "result" in data:
            return PrimaryResult(result=YearResult(data["result"]))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"stored results are malformed: {exc!r}") from None
    raise CodecError("stored results are neither a secondary nor a primary result.")


def after_summer_to_json(after: StoredAfterSummer) -> dict[str, Any]:
    return {
        "learning_year": str(after.learning_year),
        "conduct_year": str(after.conduct_year),
        "outcome": str(after.outcome),
        "retaken": list(after.retaken),
    }


def after_summer_from_json(data: Mapping[str, Any]) -> StoredAfterSummer | None:
    """August's decision from stored results, or None before August's close."""
    after = data.get(AFTER_SUMMER_KEY)
    if not after:
        return None
    try:
        return StoredAfterSummer(
            learning_year=Rating(after["learning_year"]),
            conduct_year=Rating(after["conduct_year"]),
            outcome=Outcome(after["outcome"]),
            retaken=tuple(after.get("retaken", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"stored after-summer results are malformed: {exc!r}") from None


def with_after_summer(data: Mapping[str, Any], after: StoredAfterSummer) -> dict[str, Any]:
    """Stored results with August's decision added (the June results kept as they were)."""
    return {**data, AFTER_SUMMER_KEY: after_summer_to_json(after)}
