"""What every Excel workbook the portal writes goes through: text is only ever text.

A name or a comment a spreadsheet would read as a formula (=, +, -, @, a tab or a line break
first, also after spaces) is typed as a string with Excel's quote prefix, so it shows as written
and is never evaluated (issue 9, finding 8). Every workbook we write (the import template here,
the score sheet in transcripts.exports) goes through `workbook_text_only` before it is saved.
"""

from __future__ import annotations

import re

import openpyxl

# What makes a spreadsheet evaluate a typed value (OWASP's CSV-injection list), after any spaces.
_FORMULA_START = re.compile(r"^\s*[=+\-@\t\r\n]")


def workbook_text_only(workbook: openpyxl.Workbook) -> openpyxl.Workbook:
    """Type every text cell that a spreadsheet would evaluate as a plain string.

    openpyxl stores a str beginning with '=' as a formula (<f>); Excel and LibreOffice would
    also turn "+...", "-...", "@..." into formulas once the cell is edited. Such cells become
    strings (written as inline text, no <f>) with the quote prefix, the visible text unchanged.
    """
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and _FORMULA_START.match(cell.value):
                    cell.data_type = "s"
                    cell.quotePrefix = True
    return workbook
