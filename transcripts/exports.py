"""Excel export of a class's score sheet for one term, one sheet per subject (moved from schools, issue 10).

Headers and titles are the Vietnamese labels of the Ministry's forms (STT, ĐTBmhk, Mức đạt
được…) whatever the interface language: the sheet is printed, filed and exchanged as a Vietnamese
school document. Scores are written as numbers (Excel shows them with the reader's decimal mark).

Text is only ever text: a name or a comment a spreadsheet would read as a formula (=, +, -, @,
a tab or a line break first, also after spaces) is typed as a string with Excel's quote prefix,
so it shows as written and is never evaluated (issue 9, finding 8). Every workbook we write
goes through `schools.services.workbook_text_only` before it is saved.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from io import BytesIO

import openpyxl
from django.db import connection
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from portal.choices import SCHOOL_LEADER_ROLES, Role
from portal.models import School, User
from portal.permissions import access_for
from schools.choices import Ruleset, SubjectKind
from schools.models import CurriculumEntry, SchoolClass
from schools.services import workbook_text_only

from .choices import PrimaryPeriod
from .selectors import Gradebook, gradebook_for

EXPORTERS = SCHOOL_LEADER_ROLES | {Role.SCHOOL_ADMIN}
TERM_PERIOD = {1: PrimaryPeriod.END1, 2: PrimaryPeriod.END2}
TERM_NAMES = {1: "Học kì I", 2: "Học kì II"}
PERIOD_NAMES = {PrimaryPeriod.END1: "Cuối học kì I", PrimaryPeriod.END2: "Cuối năm học"}
HEADERS = {
    "regular_1": "TX1",
    "regular_2": "TX2",
    "regular_3": "TX3",
    "regular_4": "TX4",
    "mid": "GK",
    "end": "CK",
    "test_score": "Điểm KTĐK",
    "comment": "Nhận xét",
}
NUMBER_FIELDS = {"regular_1", "regular_2", "regular_3", "regular_4", "mid", "end", "test_score"}
# Characters Excel refuses in a sheet title.
_BAD_TITLE = re.compile(r"[\[\]:*?/\\]")


def can_export_score_sheet(user: User, school: School, school_class: SchoolClass) -> bool:
    """The school's leaders and administrator, and the class's homeroom teacher."""
    roles = access_for(user).roles_in_school(school.pk)
    if roles & EXPORTERS:
        return True
    return Role.HOMEROOM_TEACHER in roles and user.pk == school_class.homeroom_teacher_id


def _sheet_title(name: str, taken: set[str]) -> str:
    """A unique sheet title of at most 31 characters (Excel's limit)."""
    base = _BAD_TITLE.sub("-", name).strip() or "Mon"
    title = base[:31]
    counter = 2
    while title.casefold() in taken:
        suffix = f" ({counter})"
        title = base[: 31 - len(suffix)] + suffix
        counter += 1
    taken.add(title.casefold())
    return title


def _number(text: str) -> Decimal | str:
    """A score as the grade book displays it ("7,5") back to a number; other text as it is."""
    if not text:
        return ""
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return text


def _columns(book: Gradebook) -> list[tuple[str, str]]:
    """(field, header) of the assessment columns, in the order of the paper form."""
    if book.entry.kind == SubjectKind.PRIMARY:
        labels = {**HEADERS, "level": "Mức đạt được"}
        return [(name, labels[name]) for name, _label in book.columns]
    if book.entry.kind == SubjectKind.SCORED:
        scores = [(name, HEADERS[name]) for name, _label in book.columns if name != "comment"]
        return [*scores, ("average", "ĐTBmhk"), ("comment", "Nhận xét")]
    return [("level", "Đ/CĐ"), ("comment", "Nhận xét")]


def _sheet_write(sheet, book: Gradebook, title: str) -> None:
    columns = _columns(book)
    headers = ["STT", "Mã học sinh", "Họ và tên", *[label for _name, label in columns]]
    sheet.append([title])
    sheet.append([f"Môn: {book.entry.subject.name}"])
    sheet.append([])
    sheet.append(headers)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    sheet["A1"].font = Font(bold=True, size=12)
    sheet["A2"].font = bold
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=len(headers))
    for cell in sheet[4]:
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for index, row in enumerate(book.rows, start=1):
        values: list[object] = [
            row.enrolment.number or index,
            row.enrolment.student.student_code,
            row.enrolment.student.full_name,
        ]
        for name, _label in columns:
            if name == "average":
                values.append(_number(row.average))
            elif name in NUMBER_FIELDS:
                values.append(_number(row.cells.get(name, "")))
            else:
                values.append(row.cells.get(name, ""))
        sheet.append(values)
        for position, (name, _label) in enumerate(columns, start=4):
            if name in NUMBER_FIELDS or name == "average":
                cell = sheet.cell(row=sheet.max_row, column=position)
                cell.number_format = "0" if name == "test_score" else "0.0"
                cell.alignment = Alignment(horizontal="center")
    widths = [6, 16, 28, *[40 if name == "comment" else 10 for name, _label in columns]]
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "D5"


def score_sheet_export(*, school_class: SchoolClass, term: int, school: School | None = None) -> bytes:
    """The class's scores for a term as an .xlsx workbook, one sheet per subject of its curriculum.

    TT22/TT43 classes: regular, mid-term and end-term scores with the term average (ĐTBmhk), or
    Đ/CĐ for comment subjects. TT27 classes: the end-of-term period (term I → end of term I, term
    II → end of year) with level, periodic test score where the subject has one, and comment.
    One query for the curriculum, then a constant number per subject (gradebook_for).
    Call with the school's schema active; `school` defaults to the connection's tenant.
    """
    if school is None:
        # django-tenants' connection (the ENGINE in config.env) carries the active schema's tenant.
        tenant = getattr(connection, "tenant", None)
        assert isinstance(tenant, School), "no school given and no school's schema active"
        school = tenant
    year = school_class.school_year
    primary = school_class.ruleset == Ruleset.TT27
    period = TERM_PERIOD[term]
    when = PERIOD_NAMES[period] if primary else TERM_NAMES[term]
    title = f"{school.name} · Lớp {school_class.name} · {when} · Năm học {year.code}"
    entries = CurriculumEntry.objects.filter(
        school_year_id=school_class.school_year_id, grade=school_class.grade
    ).select_related("subject")

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    taken: set[str] = set()
    for entry in entries.order_by("position"):
        book = gradebook_for(school_class=school_class, entry=entry, term=term, period=period)
        _sheet_write(workbook.create_sheet(_sheet_title(entry.subject.name, taken)), book, title)
    if not workbook.worksheets:
        # A grade without curriculum rows still gets a valid workbook saying what it is.
        workbook.create_sheet("Bảng điểm").append([title])
    workbook_text_only(workbook)
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
