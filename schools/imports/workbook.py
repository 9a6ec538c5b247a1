"""The workbook's layout and reading it: sheets and columns, limits, problems, cell values.

Reading turns the file into plain rows (column -> cell value) of the known sheets, refusing with
SchoolImportError a file that is not a workbook, too large, or whose sheets or headers are wrong.
The cell helpers normalise what spreadsheets write: text in NFC with spaces collapsed, whole
numbers typed as 6.0, dates as date cells or as text, ID numbers that lost their leading zeros.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from io import BytesIO

import openpyxl
from django.utils.translation import gettext as _

MAX_BYTES = 5 * 1024 * 1024
# A large school has ~3,000 students; a sheet far beyond that is a wrong file, not a school.
MAX_ROWS = 20_000
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CLASS_SHEET, STUDENT_SHEET, ASSIGNMENT_SHEET, GUIDE_SHEET = "Lop", "HocSinh", "PhanCong", "HuongDan"
COLUMNS: dict[str, tuple[str, ...]] = {
    CLASS_SHEET: ("ten_lop", "khoi", "gvcn"),
    STUDENT_SHEET: (
        "ma_hoc_sinh",
        "ho_ten",
        "gioi_tinh",
        "ngay_sinh",
        "so_dinh_danh",
        "ma_tam",
        "noi_sinh",
        "dan_toc",
        "quoc_tich",
        "que_quan",
        "noi_o",
        "ho_ten_cha",
        "ho_ten_me",
        "nguoi_giam_ho",
        "lop",
        "stt",
    ),
    ASSIGNMENT_SHEET: ("lop", "mon", "giao_vien"),
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    CLASS_SHEET: ("ten_lop", "khoi"),
    STUDENT_SHEET: ("ma_hoc_sinh", "ho_ten", "gioi_tinh", "ngay_sinh", "lop"),
    ASSIGNMENT_SHEET: ("lop", "mon", "giao_vien"),
}


# --- Problems --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with the file, located as the spreadsheet shows it."""

    sheet: str  # "" for the whole file
    row: int  # the header is row 1; 0 for the whole sheet
    column: str  # "" for the whole row or sheet
    message: str

    def __str__(self) -> str:
        if not self.sheet:
            return self.message
        if not self.row:
            return _("Sheet %(sheet)s: %(message)s") % {"sheet": self.sheet, "message": self.message}
        if not self.column:
            return _("Sheet %(sheet)s, row %(row)d: %(message)s") % {
                "sheet": self.sheet,
                "row": self.row,
                "message": self.message,
            }
        return _("Sheet %(sheet)s, row %(row)d, column %(column)s: %(message)s") % {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


class SchoolImportError(Exception):
    """The file is refused; nothing was written. Carries every problem found, not just the first."""

    def __init__(self, filename: str, problems: list[ImportProblem]):
        self.filename = filename
        self.problems = problems
        super().__init__("\n".join(f"{filename}: {p}" for p in problems))


# --- Reading the workbook --------------------------------------------------------------------


@dataclass
class _Sheet:
    name: str
    columns: set[str]
    rows: list[tuple[int, dict[str, object]]]  # (row number, column -> cell value)


def _text(value: object) -> str:
    """A cell as text: NFC (Vietnamese typed on some systems arrives decomposed), spaces collapsed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def _blank(values: tuple) -> bool:
    return all(_text(v) == "" for v in values)


def _workbook_read(data: bytes, filename: str) -> dict[str, _Sheet]:
    """The known sheets of the workbook, or SchoolImportError for a file that cannot be read."""

    def refuse(message: str) -> SchoolImportError:
        return SchoolImportError(filename, [ImportProblem("", 0, "", message)])

    if len(data) > MAX_BYTES:
        raise refuse(_("The file is larger than %(limit)d MB.") % {"limit": MAX_BYTES // (1024 * 1024)})
    if not zipfile.is_zipfile(BytesIO(data)):
        raise refuse(_("The file is not an Excel workbook (.xlsx). Save it as Excel Workbook and try again."))
    try:
        workbook = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds (KeyError, BadZipFile, XML errors) on a bad file
        raise refuse(
            _("The file is not an Excel workbook (.xlsx). Save it as Excel Workbook and try again.")
        ) from None
    problems: list[ImportProblem] = []
    sheets: dict[str, _Sheet] = {}
    try:
        for worksheet in workbook.worksheets:
            if worksheet.title not in COLUMNS:
                if worksheet.title != GUIDE_SHEET and not _sheet_is_empty(worksheet):
                    problems.append(
                        ImportProblem(
                            worksheet.title,
                            0,
                            "",
                            _("Unknown sheet; the sheets are named exactly %(sheets)s.")
                            % {"sheets": ", ".join(COLUMNS)},
                        )
                    )
                continue
            sheets[worksheet.title] = _sheet_read(worksheet, problems)
    finally:
        workbook.close()
    if not sheets and not problems:
        problems.append(
            ImportProblem(
                "",
                0,
                "",
                _("The workbook has none of the sheets %(sheets)s.") % {"sheets": ", ".join(COLUMNS)},
            )
        )
    if problems:
        raise SchoolImportError(filename, problems)
    return sheets


def _sheet_is_empty(worksheet) -> bool:
    worksheet.reset_dimensions()
    return all(_blank(values) for values in worksheet.iter_rows(values_only=True))


def _sheet_read(worksheet, problems: list[ImportProblem]) -> _Sheet:
    """Header and rows of one known sheet; header problems are added to `problems`."""
    name = worksheet.title
    # Some generators write a wrong <dimension>; read_only mode would then cut rows off.
    worksheet.reset_dimensions()
    rows = worksheet.iter_rows(values_only=True)
    header_values = next(rows, ())
    header = [_text(v).lower() for v in header_values]
    seen: set[str] = set()
    for column in header:
        if not column:
            continue
        if column not in COLUMNS[name]:
            problems.append(
                ImportProblem(
                    name,
                    1,
                    column,
                    _("Unknown column; the columns are: %(columns)s") % {"columns": ", ".join(COLUMNS[name])},
                )
            )
        elif column in seen:
            problems.append(ImportProblem(name, 1, column, _("This column appears twice.")))
        seen.add(column)
    for column in REQUIRED_COLUMNS[name]:
        if column not in seen:
            problems.append(ImportProblem(name, 1, column, _("Required column is missing.")))
    data: list[tuple[int, dict[str, object]]] = []
    for number, values in enumerate(rows, start=2):
        if _blank(values):
            continue
        if len(data) >= MAX_ROWS:
            problems.append(
                ImportProblem(name, 0, "", _("The sheet has more than %(limit)d rows.") % {"limit": MAX_ROWS})
            )
            break
        row = {
            column: value for column, value in zip(header, values, strict=False) if column in COLUMNS[name]
        }
        data.append((number, row))
    return _Sheet(name=name, columns=seen & set(COLUMNS[name]), rows=data)


# --- Cell values -----------------------------------------------------------------------------


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = _text(value)
    return int(text) if re.fullmatch(r"\d{1,4}", text) else None


def _date(value: object) -> dt.date | None:
    """A date cell, or text dd/mm/yyyy (also with '-' or '.'), or yyyy-mm-dd."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if match := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text):
            return dt.date(int(match[3]), int(match[2]), int(match[1]))
        if match := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return None


def _personal_id_text(value: object) -> str:
    """A number cell loses the leading zeros of the province code (001-096): put them back."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            return _text(value)
        digits = str(int(value))
        return digits.zfill(12) if len(digits) <= 12 else digits
    return re.sub(r"\s+", "", _text(value))
