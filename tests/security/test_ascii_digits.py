"""Numbers are typed in ASCII digits only (issue 9, finding 12): Arabic-Indic (٧), full-width (７)
and other scripts' digits are refused with the field's own message, never stored."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import translation

from schools.identity import PersonalIdError, personal_id_parse
from schools.imports.workbook import _date, _whole_number
from transcripts.services import CellError, parse_absences, parse_score, parse_test_score


@pytest.fixture(autouse=True)
def in_english():
    """The messages are matched in English (Vietnamese is the default language)."""
    with translation.override("en"):
        yield


FOREIGN_DIGITS = ["٧", "７", "١٠", "۸,٥", "७", "٣.٥", "𝟖"]


@pytest.mark.parametrize("raw", FOREIGN_DIGITS)
def test_a_score_in_another_alphabets_digits_is_refused(raw):
    with pytest.raises(CellError, match="A score is a number from 0 to 10"):
        parse_score(raw)


@pytest.mark.parametrize("raw", FOREIGN_DIGITS)
def test_a_test_score_in_another_alphabets_digits_is_refused(raw):
    with pytest.raises(CellError, match="A periodic test score is a whole number"):
        parse_test_score(raw)


@pytest.mark.parametrize("raw", FOREIGN_DIGITS)
def test_absences_in_another_alphabets_digits_are_refused(raw):
    with pytest.raises(CellError, match="Absences are a whole number"):
        parse_absences(raw)


def test_ascii_scores_are_still_accepted():
    assert [str(parse_score(v)) for v in ("7", "7,5", "10", "0.5")] == ["7", "7.5", "10", "0.5"]
    assert (parse_test_score("9"), parse_absences("12")) == (9, 12)


def test_a_personal_id_in_another_alphabets_digits_is_refused():
    ascii_id = "001212000001"
    assert personal_id_parse(ascii_id).birth_year == 2012
    arabic = ascii_id.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    with pytest.raises(PersonalIdError, match="exactly 12 digits"):
        personal_id_parse(arabic)
    fullwidth = ascii_id.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    with pytest.raises(PersonalIdError, match="exactly 12 digits"):
        personal_id_parse(fullwidth)


@pytest.mark.parametrize("raw", ["٣", "１２", "١٠"])
def test_a_workbook_number_in_another_alphabets_digits_is_not_read_as_a_number(raw):

    assert _whole_number(raw) is None
    assert _whole_number("12") == 12


@pytest.mark.parametrize("raw", ["٠١/٠٩/٢٠١٢", "２０１２-０９-０１"])
def test_a_workbook_date_in_another_alphabets_digits_is_not_read_as_a_date(raw):

    assert _date(raw) is None
    assert _date("01/09/2012") == dt.date(2012, 9, 1)
