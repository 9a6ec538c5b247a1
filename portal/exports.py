"""Excel export of a dashboard's table: the rows on screen (same filters, same order), the same
columns with the page's labels, and a totals line. Counts and shares are numeric cells (a share
formatted "0%"): the spreadsheet shows them in its reader's locale and can still add them up, so
they are not written as the page's text (portal.formats is for text a person reads).

Aggregates only (no named student), so the export is not audited. Text cells a spreadsheet
would evaluate (=, +, -, @, a tab or a line break first) are typed as plain strings with the
quote prefix, as every workbook of the portal is (schools.services.workbook_text_only, which
portal, at the bottom of the chain, cannot import: the same rule, repeated here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from io import BytesIO

import openpyxl
from django.http import HttpResponse
from django.utils.text import slugify
from django.utils.translation import gettext as _
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from .progress.selectors import ProgressRow
from .progress.tables import Column

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = re.compile(r"^\s*[=+\-@\t\r\n]")


def _cell_value(column: Column, row: ProgressRow) -> object:
    value = column.value(row)
    if column.percent and value is not None:
        return round(float(value), 4)  # type: ignore[arg-type]  # a share
    return value


def progress_workbook(
    *,
    title: str,
    school_year: str,
    columns: Sequence[Column],
    rows: Sequence[ProgressRow],
    total: ProgressRow,
) -> bytes:
    """The table as an .xlsx: a title line, the headers, the rows, the totals line."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = _("Progress")
    sheet.append([f"{title} · {_('School year')} {school_year}"])
    sheet["A1"].font = Font(bold=True)
    sheet.append([str(c.label) for c in columns])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell_value(c, row) for c in columns])
    totals = [_cell_value(c, total) if c.numeric else "" for c in columns]
    totals[0] = _("Total")
    sheet.append(totals)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = 40 if column.key == "name" else 14
        if column.percent:
            for (cell,) in sheet.iter_rows(min_row=3, min_col=index, max_col=index):
                cell.number_format = "0%"
    for line in sheet.iter_rows():
        for cell in line:
            if isinstance(cell.value, str) and _FORMULA_START.match(cell.value):
                cell.data_type = "s"
                cell.quotePrefix = True
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def progress_xlsx_response(
    *,
    filename: str,
    title: str,
    school_year: str,
    columns: Sequence[Column],
    rows: Sequence[ProgressRow],
    total: ProgressRow,
) -> HttpResponse:
    content = progress_workbook(title=title, school_year=school_year, columns=columns, rows=rows, total=total)
    response = HttpResponse(content, content_type=XLSX_CONTENT_TYPE)
    name = f"{slugify(filename) or 'tien-do'}-{school_year}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
