"""The Ministry's assessment rules, one module per circular, and the registry that picks one.

- tt27: primary, Thông tư 27/2020/TT-BGDĐT;
- tt22: lower and upper secondary, Thông tư 22/2021/TT-BGDĐT;
- tt43: continuing education (GDTX), Thông tư 43/2021/TT-BGDĐT (TT22 with 5 subjects for 6).

A transcript is computed under the rules of its own school year (domain.md §3), so callers ask
`ruleset_for_school_year(level, school_year)` and store the rule set's `code` with the result;
`ruleset_for(code)` finds the same rules again to recompute or audit it. Every module is pure:
dataclasses in, dataclasses out, no ORM, no settings.

When a circular is amended, the new reading becomes a new RuleSet with its own code and is added
to _HISTORY with the school year it starts from; the old one stays, for the years it governed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import tt22, tt27, tt43

LEVELS = ("primary", "lower_secondary", "upper_secondary", "continuing")


class RuleSetError(ValueError):
    """No rule set answers the question asked (an unknown code, level or school year)."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One version of the rules: what it is called, whom it assesses and how.

    `kind` says which dataclasses `evaluate` takes: "primary" (tt27.PrimaryPupil -> PrimaryResult)
    or "secondary" (tt22.SecondaryStudent -> SecondaryResult). `first_year_by_grade` is the
    circular's roadmap: the first school year (its starting calendar year) in which each grade was
    assessed under it.
    """

    code: str
    circular: str
    kind: str
    evaluate: Callable[[Any], Any]
    first_year_by_grade: Mapping[int, int]
    # "secondary" only: the same rules on plain numbers (tt22.evaluate_in_tenths's signature),
    # for a province's batch, which reads scores straight into tenths.
    evaluate_in_tenths: Callable[..., Any] | None = None

    @property
    def first_year(self) -> int:
        return min(self.first_year_by_grade.values())


TT27 = RuleSet(
    code=tt27.CODE,
    circular=tt27.CIRCULAR,
    kind="primary",
    evaluate=tt27.evaluate,
    # Grade 1 from 2020-2021, then one grade a year.
    first_year_by_grade={1: 2020, 2: 2021, 3: 2022, 4: 2023, 5: 2024},
)
# TT22 and TT43 share the roadmap of the 2018 programme: grade 6 from 2021-2022, 7 and 10 from
# 2022-2023, 8 and 11 from 2023-2024, 9 and 12 from 2024-2025.
_SECONDARY_ROADMAP = {6: 2021, 7: 2022, 8: 2023, 9: 2024, 10: 2022, 11: 2023, 12: 2024}
TT22 = RuleSet(
    code=tt22.CODE,
    circular=tt22.CIRCULAR,
    kind="secondary",
    evaluate=tt22.evaluate,
    first_year_by_grade=_SECONDARY_ROADMAP,
    evaluate_in_tenths=tt22.evaluate_in_tenths,
)
TT43 = RuleSet(
    code=tt43.CODE,
    circular=tt43.CIRCULAR,
    kind="secondary",
    evaluate=tt43.evaluate,
    first_year_by_grade=_SECONDARY_ROADMAP,
    evaluate_in_tenths=tt43.evaluate_in_tenths,
)

RULESETS: Mapping[str, RuleSet] = {ruleset.code: ruleset for ruleset in (TT22, TT43, TT27)}

# For each level, the grades it teaches and its rule sets with the school year each starts from,
# oldest first. One version each today: every year from its circular's first onward is current.
# Without a grade, a level maps from its circular's first year (2021-2022 for TT22 even for upper
# secondary, whose grade 10 joined in 2022-2023): the grade-precise answer needs `grade`.
_GRADES: Mapping[str, range] = {
    "primary": range(1, 6),
    "lower_secondary": range(6, 10),
    "upper_secondary": range(10, 13),
    "continuing": range(6, 13),
}
_HISTORY: Mapping[str, tuple[tuple[int, RuleSet], ...]] = {
    "primary": ((TT27.first_year, TT27),),
    "lower_secondary": ((TT22.first_year, TT22),),
    "upper_secondary": ((TT22.first_year, TT22),),
    "continuing": ((TT43.first_year, TT43),),
}
_SCHOOL_YEAR = re.compile(r"(\d{4})-(\d{4})")


def ruleset_for(code: str) -> RuleSet:
    """The rule set stored under `code` ("tt22", "tt43", "tt27")."""
    try:
        return RULESETS[code]
    except (KeyError, TypeError):
        raise RuleSetError(
            f"Unknown rule set {code!r}; the rule sets are: {', '.join(sorted(RULESETS))}."
        ) from None


def ruleset_for_school_year(level: str, school_year: str, *, grade: int | None = None) -> RuleSet:
    """The rule set that governs `level` ("primary", "lower_secondary", "upper_secondary",
    "continuing") in `school_year` ("2024-2025").

    Every school year from a circular's first onward maps to the current version; an earlier year
    was assessed under the circulars these replaced, which are not implemented, and raises
    RuleSetError rather than silently applying today's rules. With `grade`, the circular's
    roadmap is applied too: grade 9 in 2022-2023 was still under the old rules.
    """
    if level not in _HISTORY:
        raise RuleSetError(f"Unknown school level {level!r}; the levels are: {', '.join(LEVELS)}.")
    match = _SCHOOL_YEAR.fullmatch(school_year) if isinstance(school_year, str) else None
    if match is None or int(match[2]) != int(match[1]) + 1:
        raise RuleSetError(f"{school_year!r} is not a school year such as '2024-2025'.")
    start = int(match[1])
    history = _HISTORY[level]
    candidates = [ruleset for since, ruleset in history if since <= start]
    if not candidates:
        since, ruleset = history[0]
        raise RuleSetError(
            f"No rule set for {level} in {school_year}: {ruleset.circular} ({ruleset.code}) applies "
            f"from {since}-{since + 1}, and the circulars before it are not implemented."
        )
    ruleset = candidates[-1]
    if grade is not None:
        if grade not in _GRADES[level]:
            raise RuleSetError(f"Grade {grade!r} is not taught at the {level} level.")
        since = ruleset.first_year_by_grade[grade]
        # Only the first version has predecessors that are not implemented.
        if start < since and ruleset is history[0][1]:
            raise RuleSetError(
                f"No rule set for grade {grade} in {school_year}: {ruleset.circular} ({ruleset.code}) "
                f"applies to grade {grade} from {since}-{since + 1}, and the circulars before it "
                "are not implemented."
            )
    return ruleset


__all__ = [
    "LEVELS",
    "RULESETS",
    "TT22",
    "TT27",
    "TT43",
    "RuleSet",
    "RuleSetError",
    "ruleset_for",
    "ruleset_for_school_year",
]
