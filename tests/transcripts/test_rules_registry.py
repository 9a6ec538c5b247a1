"""The registry: a rule set by its code, and the one that governs a level in a school year."""

from __future__ import annotations

import pytest

from transcripts.rules import (
    TT22,
    TT27,
    TT43,
    RuleSetError,
    ruleset_for,
    ruleset_for_school_year,
    tt22,
    tt27,
    tt43,
)


@pytest.mark.parametrize(("code", "module"), [("tt22", tt22), ("tt43", tt43), ("tt27", tt27)])
def test_it_finds_a_rule_set_by_its_code(code, module):
    ruleset = ruleset_for(code)
    assert ruleset.code == code
    assert ruleset.evaluate is module.evaluate
    assert ruleset.circular == module.CIRCULAR


@pytest.mark.parametrize("code", ["tt99", "TT22", "", None])
def test_it_refuses_an_unknown_code(code):
    with pytest.raises(RuleSetError, match="Unknown rule set"):
        ruleset_for(code)


@pytest.mark.parametrize(
    ("level", "ruleset"),
    [("primary", TT27), ("lower_secondary", TT22), ("upper_secondary", TT22), ("continuing", TT43)],
)
@pytest.mark.parametrize("school_year", ["2021-2022", "2024-2025", "2030-2031"])
def test_it_maps_every_school_year_from_2021_2022_to_the_current_rules(level, ruleset, school_year):
    assert ruleset_for_school_year(level, school_year) is ruleset


def test_it_maps_primary_from_its_first_year_2020_2021():
    assert ruleset_for_school_year("primary", "2020-2021") is TT27


@pytest.mark.parametrize(
    ("level", "school_year"),
    [("primary", "2019-2020"), ("lower_secondary", "2020-2021"), ("continuing", "2020-2021")],
)
def test_it_refuses_a_year_before_the_circular(level, school_year):
    with pytest.raises(RuleSetError, match=f"No rule set for {level} in {school_year}"):
        ruleset_for_school_year(level, school_year)


def test_it_follows_the_circulars_roadmap_when_given_the_grade():
    assert ruleset_for_school_year("lower_secondary", "2021-2022", grade=6) is TT22
    assert ruleset_for_school_year("upper_secondary", "2024-2025", grade=12) is TT22
    with pytest.raises(RuleSetError, match="grade 9 in 2022-2023"):
        ruleset_for_school_year("lower_secondary", "2022-2023", grade=9)
    with pytest.raises(RuleSetError, match="grade 3 in 2021-2022"):
        ruleset_for_school_year("primary", "2021-2022", grade=3)


def test_it_refuses_a_grade_the_level_does_not_teach():
    with pytest.raises(RuleSetError, match="Grade 10 is not taught"):
        ruleset_for_school_year("lower_secondary", "2024-2025", grade=10)


@pytest.mark.parametrize("school_year", ["2024", "2024-2026", "2024/2025", "24-25", ""])
def test_it_refuses_what_is_not_a_school_year(school_year):
    with pytest.raises(RuleSetError, match="is not a school year"):
        ruleset_for_school_year("primary", school_year)


def test_it_refuses_an_unknown_level():
    with pytest.raises(RuleSetError, match="Unknown school level"):
        ruleset_for_school_year("university", "2024-2025")
