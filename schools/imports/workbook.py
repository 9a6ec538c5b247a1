"""The workbook's layout and reading it: sheets and columns, limits, problems, cell values.

Reading turns the file into plain rows (column -> cell value) of the known sheets, refusing with
SchoolImportError a file that is not a workbook, too large, or whose sheets or headers are wrong.
An upload is hostile until read: before openpyxl sees it, the archive is checked (its size, the
number of its parts, each part's unpacked size and ratio, their total, no password, every part
UTF-8 without a DOCTYPE or ENTITY), and while reading, rows and columns are bounded. The limits
are settings (HOCBA_IMPORT_*); see `limits()`.
The cell helpers normalise what spreadsheets write: text in NFC with spaces collapsed, whole
numbers typed as 6.0, dates as date cells or as text, ID numbers that lost their leading zeros.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from io import BytesIO
from xml.etree import ElementTree

import openpyxl
from django.conf import settings
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
# A large school has ~3,000 students; a sheet far beyond that is a wrong file, not a school.
MAX_ROWS = 20_000

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


# --- Limits and the archive's checks -----------------------------------------------------------


@dataclass(frozen=True)
class ImportLimits:
    """What an upload may be. A real workbook of a 3,000-student school is ~0.5 MB, ~15 parts,
    ~5 MB unpacked; these leave room for ten times that and refuse the bombs of issue 9."""

    max_bytes: int = MAX_BYTES  # the upload itself
    max_members: int = 200  # parts in the zip
    max_member_bytes: int = 25 * 1024 * 1024  # one part, unpacked
    max_total_bytes: int = 50 * 1024 * 1024  # all parts, unpacked
    # Unpacked / packed, for parts over 1 MB unpacked: sheets of repeated rows reach ~30-60;
    # a bomb is in the hundreds or thousands.
    max_ratio: int = 200
    max_rows: int = MAX_ROWS  # rows read in a sheet, blank ones included
    max_columns: int = 50  # cells read in a row (the widest sheet has 16 columns)
    max_blank_run: int = 1_000  # blank rows in a row end the sheet: formatting, not data


def limits() -> ImportLimits:
    """The limits, from settings HOCBA_IMPORT_MAX_BYTES, ..._MEMBERS, ..._MEMBER_BYTES,
    ..._TOTAL_BYTES, ..._RATIO, ..._ROWS, ..._COLUMNS and HOCBA_IMPORT_MAX_BLANK_RUN."""
    default = ImportLimits()
    return ImportLimits(
        **{
            name: int(getattr(settings, f"HOCBA_IMPORT_{name.upper()}", getattr(default, name)))
            for name in ImportLimits.__dataclass_fields__
        }
    )


_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: .xls, or an .xlsx encrypted with a password
_ENCRYPTED_PACKAGE = "EncryptionInfo".encode("utf-16-le")
_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_FORBIDDEN_MARKUP = (b"<!doctype", b"<!entity")
_CHUNK = 1024 * 1024


def _megabytes(count: int) -> int:
    return max(1, count // (1024 * 1024))


def _not_a_workbook() -> str:
    return _("The file is not an Excel workbook (.xlsx). Save it as Excel Workbook and try again.")


def _damaged() -> str:
    return _(
        "The workbook is damaged or incomplete and cannot be read. "
        "Open it in Excel, save it again as Excel Workbook (.xlsx) and try again."
    )


def _password() -> str:
    return _(
        "The workbook is protected by a password. Remove the password in Excel "
        "(File, Info, Protect Workbook, Encrypt with Password), save it and try again."
    )


def _member_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """Why a part is refused: not UTF-8, or a DOCTYPE or ENTITY (XXE, billion laughs); or ""."""
    with archive.open(info) as member:
        head = member.read(_CHUNK)
        start = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        # Markup in UTF-16/32 (BOMs, NULs beside '<') or EBCDIC would hide a DOCTYPE from a byte
        # search; spreadsheet programs write only UTF-8, so anything else is refused.
        if (
            start[:2] in (b"\xfe\xff", b"\xff\xfe")
            or start[:4] in (b"\x00\x00\xfe\xff", b"\x4c\x6f\xa7\x94")
            or (b"\x00" in start[:4] and b"<" in start[:4])
        ):
            return _("Part %(part)s of the workbook is not written in UTF-8, as Excel writes it.") % {
                "part": info.filename
            }
        declared = _DECLARATION.match(start)
        if declared and declared[1].lower() not in (b"utf-8", b"utf8"):
            return _("Part %(part)s of the workbook is not written in UTF-8, as Excel writes it.") % {
                "part": info.filename
            }
        tail = b""
        chunk = head
        while chunk:
            window = (tail + chunk).lower()
            if any(markup in window for markup in _FORBIDDEN_MARKUP):
                return _(
                    "Part %(part)s of the workbook declares a DOCTYPE or ENTITY, which Excel never "
                    "writes; the file is refused for safety."
                ) % {"part": info.filename}
            tail = window[-16:]
            chunk = member.read(_CHUNK)
    return ""


def _sheets_missing(archive: zipfile.ZipFile, names: set[str]) -> bool:
    """Whether a sheet the workbook lists is not in the archive (openpyxl would skip it silently,
    and the import would then report the rows of the other sheets as naming unknown classes)."""
    rels = "xl/_rels/workbook.xml.rels"
    if rels not in names:
        return True
    try:
        # Safe here: every part was refused above if it declares a DOCTYPE or ENTITY.
        tree = ElementTree.fromstring(archive.read(rels))  # noqa: S314 - no DTD can reach this parse
    except ElementTree.ParseError:
        return True
    for relation in tree:
        if relation.get("Type", "").endswith("/worksheet"):
            target = relation.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
            if path not in names:
                return True
    return False


def _archive_check(data: bytes, limit: ImportLimits) -> str:
    """Why the upload is refused before any parsing, or "" when openpyxl may open it."""
    if len(data) > limit.max_bytes:
        return _("File too large: it is over %(limit)d MB.") % {"limit": _megabytes(limit.max_bytes)}
    if data.startswith(_CFB_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            return _password()
        return _(
            "The file is an Excel 97-2003 workbook (.xls). Open it in Excel, save it as "
            "Excel Workbook (.xlsx) and try again."
        )
    if not zipfile.is_zipfile(BytesIO(data)):
        return _not_a_workbook()
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > limit.max_members:
                return _("File too large: the workbook has more than %(limit)d parts.") % {
                    "limit": limit.max_members
                }
            names = {info.filename for info in members}
            if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
                return _not_a_workbook()
            total = 0
            for info in members:
                if info.flag_bits & 0x1:
                    return _password()
                # The sizes are the archive's own claims; zipfile stops a part at its stated
                # size (and fails its CRC), so a lying archive unpacks no more than it says.
                total += info.file_size
                if info.file_size > limit.max_member_bytes:
                    return _("File too large: part %(part)s unpacks to more than %(limit)d MB.") % {
                        "part": info.filename,
                        "limit": _megabytes(limit.max_member_bytes),
                    }
                if info.file_size > 1024 * 1024 and info.file_size > limit.max_ratio * max(
                    1, info.compress_size
                ):
                    return _(
                        "File too large: part %(part)s unpacks to %(ratio)d times its packed size, "
                        "far more than a workbook does."
                    ) % {"part": info.filename, "ratio": info.file_size // max(1, info.compress_size)}
            if total > limit.max_total_bytes:
                return _("File too large: the workbook unpacks to more than %(limit)d MB.") % {
                    "limit": _megabytes(limit.max_total_bytes)
                }
            for info in members:
                if not info.is_dir() and (problem := _member_problem(archive, info)):
                    return problem
            if _sheets_missing(archive, names):
                return _damaged()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError):
        # A broken archive, an unknown compression method, a CRC that fails.
        return _damaged()
    return ""


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

    limit = limits()
    if refusal := _archive_check(data, limit):
        raise refuse(refusal)
    try:
        workbook = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds (KeyError, BadZipFile, XML errors) on a bad file
        # The archive has a workbook's parts (checked above): what fails is a part missing or broken.
        logger.info("import: workbook %s refused at opening", filename, exc_info=True)
        raise refuse(_damaged()) from None
    problems: list[ImportProblem] = []
    sheets: dict[str, _Sheet] = {}
    try:
        for worksheet in workbook.worksheets:
            if worksheet.title not in COLUMNS:
                if worksheet.title != GUIDE_SHEET and not _sheet_is_empty(worksheet, limit):
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
            sheets[worksheet.title] = _sheet_read(worksheet, problems, limit)
    except Exception:
        # Sheets are parsed lazily, row by row: a part that is missing or not well-formed fails
        # here, not at opening. Whatever openpyxl raises, the file is refused, never a 500.
        logger.info("import: workbook %s refused while reading", filename, exc_info=True)
        raise refuse(_damaged()) from None
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


def _rows(worksheet, limit: ImportLimits):
    """(row number, values) of a sheet, bounded: at most limit.max_columns cells a row, and the
    sheet ends after limit.max_blank_run blank rows in a row. Past limit.max_rows rows read
    (blank ones included), yields (0, ()) once and stops: the caller refuses the sheet."""
    # Some generators write a wrong <dimension>; read_only mode would then cut rows off.
    worksheet.reset_dimensions()
    blank_run = 0
    for number, values in enumerate(
        worksheet.iter_rows(values_only=True, max_col=limit.max_columns), start=1
    ):
        if number > limit.max_rows + 1:  # + 1: the header
            yield 0, ()
            return
        if _blank(values):
            blank_run += 1
            if blank_run >= limit.max_blank_run:
                return
            continue
        blank_run = 0
        yield number, values


def _too_many_rows(name: str, limit: ImportLimits) -> ImportProblem:
    return ImportProblem(
        name, 0, "", _("File too large: the sheet has more than %(limit)d rows.") % {"limit": limit.max_rows}
    )


def _sheet_is_empty(worksheet, limit: ImportLimits) -> bool:
    return next(_rows(worksheet, limit), None) is None


def _sheet_read(worksheet, problems: list[ImportProblem], limit: ImportLimits) -> _Sheet:
    """Header and rows of one known sheet; header problems are added to `problems`."""
    name = worksheet.title
    rows = _rows(worksheet, limit)
    header_number, header_values = next(rows, (1, ()))
    if header_number != 1:
        # The header is the first row; a sheet whose first row is blank has none.
        if header_number == 0:
            problems.append(_too_many_rows(name, limit))
            return _Sheet(name=name, columns=set(), rows=[])
        header_values = ()
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
    for number, values in rows:
        if number == 0:
            problems.append(_too_many_rows(name, limit))
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
    # ASCII digits only: `\d` also matches other scripts' digits, which int() reads.
    return int(text) if re.fullmatch(r"[0-9]{1,4}", text) else None


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
        if match := re.fullmatch(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})", text):
            return dt.date(int(match[3]), int(match[2]), int(match[1]))
        if match := re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", text):
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
