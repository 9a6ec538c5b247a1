"""Excel imports of a school's classes, students and teaching assignments: one workbook, three sheets.

The whole workbook is read and checked before anything is written, the way the CSV of schools is
(portal/provisioning.py): a file with any problem is refused with every problem listed as
(sheet, row, column, message), and nothing is written. A good file is applied in one
transaction. Importing the same file again changes nothing: rows equal to what is stored are
counted as unchanged and not saved.

Sheets (named exactly so; any may be absent, but not all):
- "Lop": ten_lop, khoi, gvcn
- "HocSinh": ma_hoc_sinh, ho_ten, gioi_tinh, ngay_sinh, so_dinh_danh, ma_tam, noi_sinh, dan_toc,
  quoc_tich, que_quan, noi_o, ho_ten_cha, ho_ten_me, nguoi_giam_ho, lop, stt
- "PhanCong": lop, mon, giao_vien
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from io import BytesIO

import openpyxl
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from portal.choices import Role
from portal.models import RoleAssignment, School, User
from portal.permissions import access_for

from .choices import EnrolmentStatus, Sex
from .curriculum import SUBJECT_NAMES
from .identity import PersonalIdError, personal_id_check
from .models import (
    CurriculumEntry,
    Enrolment,
    SchoolClass,
    SchoolYear,
    Student,
    Subject,
    TeachingAssignment,
)
from .services import class_create, grades_for_levels, teaching_assignment_set

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
# Identity columns copied into the student as they are (text).
STUDENT_TEXT_COLUMNS = {
    "ho_ten": "full_name",
    "ma_tam": "temporary_code",
    "noi_sinh": "place_of_birth",
    "dan_toc": "ethnicity",
    "quoc_tich": "nationality",
    "que_quan": "home_town",
    "noi_o": "current_address",
    "ho_ten_cha": "father_name",
    "ho_ten_me": "mother_name",
    "nguoi_giam_ho": "guardian_name",
}
FIELD_COLUMNS = {
    "student_code": "ma_hoc_sinh",
    "personal_id": "so_dinh_danh",
    "sex": "gioi_tinh",
    "date_of_birth": "ngay_sinh",
    **{name: column for column, name in STUDENT_TEXT_COLUMNS.items()},
}
SEXES = {"nam": Sex.MALE, "nữ": Sex.FEMALE}
DEFAULT_NATIONALITY = "Việt Nam"
IMPORTERS = frozenset({Role.SCHOOL_ADMIN, Role.PRINCIPAL})


def can_import_school_data(user: User, school: School) -> bool:
    """Imports create classes and students: the school administrator and the principal."""
    return bool(access_for(user).roles_in_school(school.pk) & IMPORTERS)


# --- Problems and the report ----------------------------------------------------------------


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


@dataclass
class SheetCounts:
    sheet: str
    label: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    """What an import did, per sheet present in the file."""

    filename: str
    sheets: list[SheetCounts] = field(default_factory=list)

    def counts(self, sheet: str) -> SheetCounts | None:
        return next((s for s in self.sheets if s.sheet == sheet), None)


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


# --- Checking against the school's data ------------------------------------------------------


@dataclass
class _ClassPlan:
    row: int
    name: str
    grade: int | None
    homeroom: User | None
    existing: SchoolClass | None


@dataclass
class _StudentPlan:
    row: int
    student: Student  # new (no pk) or existing with the file's values applied
    changed: list[str]  # fields changed on an existing student
    is_new: bool
    class_key: str
    number: int | None
    enrolment: Enrolment | None  # the student's active enrolment in that class, if any


@dataclass
class _AssignmentPlan:
    row: int
    class_key: str
    subject: Subject
    teacher: User
    current_teacher_id: int | None


@dataclass
class _Plan:
    school: School
    year: SchoolYear | None = None
    sheets: list[str] = field(default_factory=list)
    classes: list[_ClassPlan] = field(default_factory=list)
    students: list[_StudentPlan] = field(default_factory=list)
    assignments: list[_AssignmentPlan] = field(default_factory=list)
    existing_classes: dict[str, SchoolClass] = field(default_factory=dict)
    problems: list[ImportProblem] = field(default_factory=list)

    def problem(self, sheet: str, row: int, column: str, message: str) -> None:
        self.problems.append(ImportProblem(sheet, row, column, message))


def _class_key(name: str) -> str:
    return name.casefold()


def _required(plan: _Plan, sheet: str, number: int, row: dict, column: str) -> str:
    value = _text(row.get(column))
    if not value:
        plan.problem(sheet, number, column, _("This cell is empty; it is required."))
    return value


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


def _teachers_resolve(school: School, references: set[str]) -> tuple[dict[str, User], set[int]]:
    """Users named by username or e-mail, and which of them hold a role in this school.

    Two queries whatever the number of teachers. "Holds a role" is what
    access_for(user).roles_in_school(school.pk) answers (current assignments of active users),
    asked for all of them at once instead of one query per teacher.
    """
    if not references:
        return {}, set()
    emails = [r.lower() for r in references if "@" in r]
    users = list(
        User.objects.annotate(email_lower=Lower("email")).filter(
            Q(username__in=references) | Q(email_lower__in=emails)
        )
    )
    by_username = {u.username: u for u in users}
    by_email = {u.email.lower(): u for u in users if u.email}
    found: dict[str, User] = {}
    for reference in references:
        user = by_username.get(reference) or by_email.get(reference.lower())
        if user is not None:
            found[reference] = user
    with_role = set(
        RoleAssignment.objects.current()
        .filter(school_id=school.pk, user_id__in=[u.pk for u in users if u.is_active])
        .values_list("user_id", flat=True)
    )
    return found, with_role


def _teacher(
    plan: _Plan,
    sheet: str,
    number: int,
    column: str,
    reference: str,
    teachers: tuple[dict[str, User], set[int]],
) -> User | None:
    found, with_role = teachers
    user = found.get(reference)
    if user is None:
        plan.problem(
            sheet, number, column, _("No user has the username or e-mail '%(value)s'.") % {"value": reference}
        )
        return None
    if user.pk not in with_role:
        plan.problem(
            sheet, number, column, _("'%(value)s' holds no role in this school.") % {"value": reference}
        )
        return None
    return user


def _plan_classes(plan: _Plan, sheet: _Sheet, teachers) -> dict[str, int | None]:
    """Check the Lop sheet; return the classes it names (key -> grade, None if the grade is bad)."""
    taught = set(grades_for_levels(list(plan.school.levels)))
    named: dict[str, int | None] = {}
    seen: dict[str, int] = {}
    for number, row in sheet.rows:
        name = _required(plan, CLASS_SHEET, number, row, "ten_lop")
        key = _class_key(name)
        if name and len(name) > SchoolClass._meta.get_field("name").max_length:
            plan.problem(
                CLASS_SHEET,
                number,
                "ten_lop",
                _("At most %(limit)d characters.")
                % {"limit": SchoolClass._meta.get_field("name").max_length},
            )
        elif name and key in seen:
            plan.problem(
                CLASS_SHEET,
                number,
                "ten_lop",
                _("Class '%(name)s' already appears on row %(row)d.") % {"name": name, "row": seen[key]},
            )
            continue
        elif name:
            seen[key] = number
        grade = None
        raw_grade = row.get("khoi")
        if _text(raw_grade) == "":
            plan.problem(CLASS_SHEET, number, "khoi", _("This cell is empty; it is required."))
        else:
            grade = _whole_number(raw_grade)
            if grade is None or not 1 <= grade <= 12:
                plan.problem(CLASS_SHEET, number, "khoi", _("The grade is a whole number from 1 to 12."))
                grade = None
            elif grade not in taught:
                plan.problem(
                    CLASS_SHEET,
                    number,
                    "khoi",
                    _("This school does not teach grade %(grade)d.") % {"grade": grade},
                )
                grade = None
        existing = plan.existing_classes.get(key) if name else None
        if existing is not None and grade is not None and existing.grade != grade:
            plan.problem(
                CLASS_SHEET,
                number,
                "khoi",
                _("Class %(name)s already exists in grade %(grade)d; an import cannot change its grade.")
                % {"name": existing.name, "grade": existing.grade},
            )
        homeroom = None
        reference = _text(row.get("gvcn"))
        if reference:
            homeroom = _teacher(plan, CLASS_SHEET, number, "gvcn", reference, teachers)
        if not name:
            continue
        named[key] = existing.grade if existing is not None else grade
        plan.classes.append(
            _ClassPlan(row=number, name=name, grade=grade, homeroom=homeroom, existing=existing)
        )
    return named


def _class_ref(plan: _Plan, sheet: str, number: int, row: dict, classes: dict[str, int | None]) -> str:
    """The key of the class a row names, or "" (with a problem) when there is no such class."""
    name = _required(plan, sheet, number, row, "lop")
    if not name:
        return ""
    key = _class_key(name)
    if key not in classes:
        plan.problem(
            sheet,
            number,
            "lop",
            _("There is no class '%(name)s' in school year %(year)s, nor in the Lop sheet.")
            % {"name": name, "year": plan.year.code},
        )
        return ""
    return key


def _plan_students(plan: _Plan, sheet: _Sheet, classes: dict[str, int | None]) -> None:
    codes = {_text(row.get("ma_hoc_sinh")) for _n, row in sheet.rows} - {""}
    existing = {s.student_code: s for s in Student.objects.filter(student_code__in=codes)}
    ids_in_file = {_personal_id_text(row.get("so_dinh_danh")) for _n, row in sheet.rows} - {""}
    id_owner = dict(
        Student.objects.filter(personal_id__in=ids_in_file).values_list("personal_id", "student_code")
    )
    enrolments: dict[int, list[Enrolment]] = {}
    if plan.year is not None:
        for enrolment in Enrolment.objects.filter(
            student__in=list(existing.values()), school_class__school_year=plan.year
        ).select_related("school_class"):
            enrolments.setdefault(enrolment.student_id, []).append(enrolment)

    seen_codes: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for number, row in sheet.rows:
        before = len(plan.problems)
        code = _required(plan, STUDENT_SHEET, number, row, "ma_hoc_sinh")
        if code in seen_codes:
            plan.problem(
                STUDENT_SHEET,
                number,
                "ma_hoc_sinh",
                _("Student code '%(code)s' already appears on row %(row)d.")
                % {"code": code, "row": seen_codes[code]},
            )
        elif code:
            seen_codes[code] = number
        full_name = _required(plan, STUDENT_SHEET, number, row, "ho_ten")

        sex = SEXES.get(_text(row.get("gioi_tinh")).casefold())
        if sex is None:
            plan.problem(STUDENT_SHEET, number, "gioi_tinh", _("Write Nam or Nữ."))

        born = _date(row.get("ngay_sinh"))
        if born is None:
            plan.problem(
                STUDENT_SHEET,
                number,
                "ngay_sinh",
                _("'%(value)s' is not a date; write it as dd/mm/yyyy, e.g. 05/09/2015.")
                % {"value": _text(row.get("ngay_sinh"))},
            )
        elif born > timezone.localdate() or born.year < 1900:
            plan.problem(STUDENT_SHEET, number, "ngay_sinh", _("The date of birth is not plausible."))
            born = None

        student = existing.get(code)
        personal_id = None
        raw_id = _personal_id_text(row.get("so_dinh_danh"))
        if raw_id:
            try:
                personal_id = personal_id_check(raw_id, date_of_birth=born, sex=sex)
            except PersonalIdError as exc:
                plan.problem(STUDENT_SHEET, number, "so_dinh_danh", str(exc))
            else:
                owner = id_owner.get(personal_id)
                if personal_id in seen_ids:
                    plan.problem(
                        STUDENT_SHEET,
                        number,
                        "so_dinh_danh",
                        _("Personal ID number %(id)s already appears on row %(row)d.")
                        % {"id": personal_id, "row": seen_ids[personal_id]},
                    )
                elif owner is not None and owner != code:
                    plan.problem(
                        STUDENT_SHEET,
                        number,
                        "so_dinh_danh",
                        _("Personal ID number %(id)s belongs to another student (code %(code)s).")
                        % {"id": personal_id, "code": owner},
                    )
                seen_ids[personal_id] = number
        elif student is not None and student.personal_id and born is not None and sex is not None:
            # An empty cell never removes a number already recorded, but it must still agree
            # with the birth date and sex the file gives.
            try:
                personal_id_check(student.personal_id, date_of_birth=born, sex=sex)
            except PersonalIdError as exc:
                plan.problem(STUDENT_SHEET, number, "so_dinh_danh", str(exc))
        has_id = bool(raw_id) or bool(student and student.personal_id)
        temporary = _text(row.get("ma_tam")) if "ma_tam" in sheet.columns else None
        if not has_id and not (temporary or (temporary is None and student and student.temporary_code)):
            plan.problem(
                STUDENT_SHEET,
                number,
                "ma_tam",
                _("Give the personal ID number or, while the student has none, the temporary code."),
            )

        class_key = _class_ref(plan, STUDENT_SHEET, number, row, classes)
        position = None
        if _text(row.get("stt")):
            position = _whole_number(row.get("stt"))
            if position is None or not 1 <= position <= 999:
                plan.problem(
                    STUDENT_SHEET, number, "stt", _("The number in class is a whole number from 1 to 999.")
                )
                position = None

        if len(plan.problems) > before:
            continue

        values: dict[str, object] = {"full_name": full_name, "sex": sex, "date_of_birth": born}
        if personal_id:
            values["personal_id"] = personal_id
        for column, name in STUDENT_TEXT_COLUMNS.items():
            if column in sheet.columns and column != "ho_ten":
                values[name] = _text(row.get(column))
        if "nationality" in values and not values["nationality"]:
            values["nationality"] = DEFAULT_NATIONALITY

        is_new = student is None
        if student is None:
            student = Student(student_code=code, **values)
            changed = []
        else:
            changed = [name for name, value in values.items() if getattr(student, name) != value]
            for name in changed:
                setattr(student, name, values[name])
        # Uniqueness was checked above against the file and the database, all at once.
        try:
            student.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                for message in messages:
                    plan.problem(STUDENT_SHEET, number, FIELD_COLUMNS.get(name, "-"), message)
            continue

        enrolment, refusal = _enrolment_in(class_key, [] if is_new else enrolments.get(student.pk, []))
        if refusal:
            plan.problem(STUDENT_SHEET, number, "lop", refusal)
        plan.students.append(
            _StudentPlan(
                row=number,
                student=student,
                changed=changed,
                is_new=is_new,
                class_key=class_key,
                number=position,
                enrolment=enrolment,
            )
        )


def _enrolment_in(class_key: str, this_year: list[Enrolment]) -> tuple[Enrolment | None, str]:
    """The student's active enrolment in the class named, or why the row cannot enrol them there.

    Moving a student between classes, or taking back one who left this year, closes or opens an
    enrolment with a date and a reason: done on purpose, not as a side effect of a spreadsheet.
    """
    active = [e for e in this_year if e.status == EnrolmentStatus.ACTIVE]
    for enrolment in active:
        if _class_key(enrolment.school_class.name) == class_key:
            return enrolment, ""
    if active:
        return None, _(
            "The student is studying in class %(name)s; moving a student to another class "
            "is not supported by file import."
        ) % {"name": active[0].school_class.name}
    if this_year:
        closed = this_year[0]
        return None, _(
            "The student's enrolment in class %(name)s this school year is closed (%(status)s); "
            "file import does not enrol them again."
        ) % {"name": closed.school_class.name, "status": closed.get_status_display()}
    return None, ""


def _subjects_index() -> dict[str, Subject]:
    """Subjects by code and by Vietnamese name (the catalogue's and the school's own), casefolded."""
    subjects = list(Subject.objects.all())
    by_code = {s.code: s for s in subjects}
    index: dict[str, Subject] = {}
    for code, name in SUBJECT_NAMES.items():
        if code in by_code:
            index[unicodedata.normalize("NFC", name).casefold()] = by_code[code]
    for subject in subjects:
        index[unicodedata.normalize("NFC", subject.name).casefold()] = subject
        index[subject.code.casefold()] = subject
    return index


def _plan_assignments(plan: _Plan, sheet: _Sheet, classes: dict[str, int | None], teachers) -> None:
    subjects = _subjects_index()
    curriculum = (
        set(CurriculumEntry.objects.filter(school_year=plan.year).values_list("grade", "subject_id"))
        if plan.year
        else set()
    )
    current = {
        (a.school_class_id, a.subject_id): a.teacher_id
        for a in TeachingAssignment.objects.filter(school_class__school_year=plan.year)
    }
    seen: dict[tuple[str, int], int] = {}
    for number, row in sheet.rows:
        class_key = _class_ref(plan, ASSIGNMENT_SHEET, number, row, classes)
        subject = None
        name = _required(plan, ASSIGNMENT_SHEET, number, row, "mon")
        if name:
            subject = subjects.get(name.casefold())
            if subject is None:
                plan.problem(
                    ASSIGNMENT_SHEET,
                    number,
                    "mon",
                    _("Unknown subject '%(value)s'; write a subject code or name of the curriculum.")
                    % {"value": name},
                )
        if subject is not None and class_key:
            grade = classes[class_key]
            if grade is not None and (grade, subject.pk) not in curriculum:
                plan.problem(
                    ASSIGNMENT_SHEET,
                    number,
                    "mon",
                    _("%(subject)s is not in the curriculum of grade %(grade)d.")
                    % {"subject": subject.name, "grade": grade},
                )
                subject = None
            elif (class_key, subject.pk) in seen:
                plan.problem(
                    ASSIGNMENT_SHEET,
                    number,
                    "mon",
                    _("This class and subject already appear on row %(row)d.")
                    % {"row": seen[(class_key, subject.pk)]},
                )
                subject = None
            else:
                seen[(class_key, subject.pk)] = number
        teacher = None
        reference = _required(plan, ASSIGNMENT_SHEET, number, row, "giao_vien")
        if reference:
            teacher = _teacher(plan, ASSIGNMENT_SHEET, number, "giao_vien", reference, teachers)
        if class_key and subject is not None and teacher is not None:
            existing = plan.existing_classes.get(class_key)
            plan.assignments.append(
                _AssignmentPlan(
                    row=number,
                    class_key=class_key,
                    subject=subject,
                    teacher=teacher,
                    current_teacher_id=current.get((existing.pk, subject.pk)) if existing else None,
                )
            )


def _plan(school: School, sheets: dict[str, _Sheet]) -> _Plan:
    """Check every row of every sheet against the school's data, in a fixed number of queries."""
    plan = _Plan(school=school, sheets=[name for name in COLUMNS if name in sheets])
    plan.year = SchoolYear.objects.filter(is_current=True).first()
    if plan.year is None:
        plan.problem("", 0, "", _("The school has no current school year; open one first."))
        return plan
    plan.existing_classes = {_class_key(c.name): c for c in SchoolClass.objects.filter(school_year=plan.year)}
    references = {
        _text(row.get(column))
        for name, column in ((CLASS_SHEET, "gvcn"), (ASSIGNMENT_SHEET, "giao_vien"))
        if name in sheets
        for _n, row in sheets[name].rows
    } - {""}
    teachers = _teachers_resolve(school, references)
    classes: dict[str, int | None] = {key: c.grade for key, c in plan.existing_classes.items()}
    if CLASS_SHEET in sheets:
        classes.update(_plan_classes(plan, sheets[CLASS_SHEET], teachers))
    if STUDENT_SHEET in sheets:
        _plan_students(plan, sheets[STUDENT_SHEET], classes)
    if ASSIGNMENT_SHEET in sheets:
        _plan_assignments(plan, sheets[ASSIGNMENT_SHEET], classes, teachers)
    return plan


# --- Writing ---------------------------------------------------------------------------------


def _enrolment_day(year: SchoolYear) -> dt.date:
    """Today, within the school year: an import before the year starts enrols from its first day."""
    return min(max(timezone.localdate(), year.starts_on), year.ends_on)


def _apply(plan: _Plan, filename: str) -> ImportReport:
    assert plan.year is not None
    report = ImportReport(filename=filename)
    labels = {
        CLASS_SHEET: SchoolClass._meta.verbose_name_plural,
        STUDENT_SHEET: Student._meta.verbose_name_plural,
        ASSIGNMENT_SHEET: TeachingAssignment._meta.verbose_name_plural,
    }
    counts = {name: SheetCounts(sheet=name, label=str(labels[name])) for name in plan.sheets}
    report.sheets = list(counts.values())

    classes = dict(plan.existing_classes)
    for item in plan.classes:
        if item.existing is None:
            classes[_class_key(item.name)] = class_create(
                school_year=plan.year,
                name=item.name,
                grade=item.grade,
                levels=list(plan.school.levels),
                homeroom_teacher=item.homeroom,
            )
            counts[CLASS_SHEET].created += 1
        elif item.homeroom is not None and item.homeroom.pk != item.existing.homeroom_teacher_id:
            # An empty gvcn cell leaves the homeroom teacher as it is (it never clears it).
            item.existing.homeroom_teacher = item.homeroom
            item.existing.save(update_fields=["homeroom_teacher"])
            counts[CLASS_SHEET].updated += 1
        else:
            counts[CLASS_SHEET].unchanged += 1

    Student.objects.bulk_create([item.student for item in plan.students if item.is_new])
    day = _enrolment_day(plan.year)
    new_enrolments = []
    for item in plan.students:
        changed = bool(item.changed)
        if item.changed:
            item.student.save(update_fields=item.changed)
        if item.enrolment is None:
            enrolment = Enrolment(
                student=item.student,
                school_class=classes[item.class_key],
                enrolled_on=day,
                number=item.number or 0,
            )
            enrolment.full_clean(
                exclude=["student", "school_class"], validate_unique=False, validate_constraints=False
            )
            new_enrolments.append(enrolment)
            changed = True
        elif item.number is not None and item.enrolment.number != item.number:
            item.enrolment.number = item.number
            item.enrolment.save(update_fields=["number"])
            changed = True
        if item.is_new:
            counts[STUDENT_SHEET].created += 1
        elif changed:
            counts[STUDENT_SHEET].updated += 1
        else:
            counts[STUDENT_SHEET].unchanged += 1
    Enrolment.objects.bulk_create(new_enrolments)

    for item in plan.assignments:
        if item.current_teacher_id == item.teacher.pk:
            counts[ASSIGNMENT_SHEET].unchanged += 1
            continue
        teaching_assignment_set(
            school_class=classes[item.class_key], subject=item.subject, teacher=item.teacher
        )
        if item.current_teacher_id is None:
            counts[ASSIGNMENT_SHEET].created += 1
        else:
            counts[ASSIGNMENT_SHEET].updated += 1
    return report


def _import_audit(*, actor: User, school: School, report: ImportReport) -> None:
    """One row in the province's audit log per import that changed something (who, what file, counts)."""
    from dataclasses import asdict

    from portal.choices import AuditAction
    from portal.services import audit_record

    if not any(s.created or s.updated for s in report.sheets):
        return  # a re-import that changed nothing writes nothing, not even a log row
    counts = {
        s.sheet: {k: v for k, v in asdict(s).items() if k not in ("sheet", "label")} for s in report.sheets
    }
    audit_record(
        actor=actor,
        action=AuditAction.SCHOOL_DATA_IMPORTED,
        obj=school,
        summary=_("%(file)s imported") % {"file": report.filename},
        changes=counts,
        school=school,
        division=None,
    )


def school_data_import(*, actor: User, school: School, data: bytes, filename: str) -> ImportReport:
    """Import a workbook of classes, students and teaching assignments into the school.

    Call with the school's schema active. The whole file is checked first; any problem raises
    SchoolImportError listing all of them, and nothing is written. Otherwise everything is
    applied in one transaction. Imports of one school are serialised (an advisory lock), so the
    checks still hold when the rows are written.
    """
    if not can_import_school_data(actor, school):
        raise PermissionDenied(_("Only the school administrator or the principal may import data."))
    sheets = _workbook_read(data, filename)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"schools.import:{school.schema_name}"]
                )
            plan = _plan(school, sheets)
            if plan.problems:
                raise SchoolImportError(filename, plan.problems)
            report = _apply(plan, filename)
            _import_audit(actor=actor, school=school, report=report)
            return report
    except IntegrityError:
        # Another writer (the admin site, say) changed the same rows between check and write.
        raise SchoolImportError(
            filename,
            [
                ImportProblem(
                    "", 0, "", _("The school's data changed during the import; import the file again.")
                )
            ],
        ) from None


# --- The template ----------------------------------------------------------------------------

EXAMPLES = {
    CLASS_SHEET: ("1A", 1, "gvcn.1a@truong.edu.vn"),
    STUDENT_SHEET: (
        "2520000001",
        "Nguyễn Văn An",
        "Nam",
        dt.date(2019, 3, 15),
        "001219012345",
        "",
        "Phường Ba Đình, Hà Nội",
        "Kinh",
        "Việt Nam",
        "Xã Đông Anh, Hà Nội",
        "Số 1 phố Điện Biên Phủ, phường Ba Đình, Hà Nội",
        "Nguyễn Văn Bình",
        "Trần Thị Cúc",
        "",
        "1A",
        1,
    ),
    ASSIGNMENT_SHEET: ("1A", "toan", "gv.toan@truong.edu.vn"),
}
WIDTHS = {
    "ten_lop": 12,
    "khoi": 8,
    "gvcn": 30,
    "ma_hoc_sinh": 16,
    "ho_ten": 26,
    "gioi_tinh": 10,
    "ngay_sinh": 13,
    "so_dinh_danh": 16,
    "ma_tam": 14,
    "noi_sinh": 28,
    "dan_toc": 10,
    "quoc_tich": 12,
    "que_quan": 28,
    "noi_o": 40,
    "ho_ten_cha": 24,
    "ho_ten_me": 24,
    "nguoi_giam_ho": 24,
    "lop": 10,
    "stt": 6,
    "mon": 24,
    "giao_vien": 30,
}
TEXT_COLUMNS = {"ten_lop", "ma_hoc_sinh", "so_dinh_danh", "ma_tam", "lop"}

# The guide is written in Vietnamese whatever the interface language: the template is a data
# exchange form of the Vietnamese school system, with Vietnamese column names, and every school
# must get the same file.
GUIDE_TITLE = "Mẫu nhập dữ liệu lớp, học sinh và phân công giảng dạy"
GUIDE_NOTES = [
    "Giữ nguyên tên các trang (Lop, HocSinh, PhanCong) và dòng tiêu đề; có thể bỏ trang không dùng.",
    "Xóa dòng ví dụ ở mỗi trang trước khi nhập.",
    "Tệp được kiểm tra toàn bộ trước khi ghi: nếu có lỗi, không dữ liệu nào được ghi.",
    "Nhập lại cùng một tệp không làm thay đổi gì; học sinh được cập nhật theo mã học sinh.",
    "Học sinh đang học lớp khác trong năm học không được chuyển lớp qua nhập tệp.",
]
GUIDE_COLUMNS = [
    ("Lop", "ten_lop", "Có", "Tên lớp trong năm học hiện tại, ví dụ 6A1."),
    ("Lop", "khoi", "Có", "Khối lớp, từ 1 đến 12, trong các cấp học của trường."),
    ("Lop", "gvcn", "Không", "Tên đăng nhập hoặc email của giáo viên chủ nhiệm (có vai trò trong trường)."),
    ("HocSinh", "ma_hoc_sinh", "Có", "Mã học sinh; học sinh đã có được cập nhật theo mã này."),
    ("HocSinh", "ho_ten", "Có", "Họ và tên như trong giấy khai sinh."),
    ("HocSinh", "gioi_tinh", "Có", "Nam hoặc Nữ."),
    ("HocSinh", "ngay_sinh", "Có", "Ngày sinh: ô kiểu ngày, hoặc chữ dạng dd/mm/yyyy (ví dụ 05/09/2015)."),
    ("HocSinh", "so_dinh_danh", "Không", "Số định danh cá nhân 12 chữ số; phải khớp năm sinh và giới tính."),
    ("HocSinh", "ma_tam", "Khi thiếu số định danh", "Mã tạm do Sở cấp cho học sinh chưa có số định danh."),
    ("HocSinh", "noi_sinh", "Không", "Nơi sinh."),
    ("HocSinh", "dan_toc", "Không", "Dân tộc."),
    ("HocSinh", "quoc_tich", "Không", "Quốc tịch (để trống: Việt Nam)."),
    ("HocSinh", "que_quan", "Không", "Quê quán."),
    ("HocSinh", "noi_o", "Không", "Nơi ở hiện nay."),
    ("HocSinh", "ho_ten_cha", "Không", "Họ tên cha."),
    ("HocSinh", "ho_ten_me", "Không", "Họ tên mẹ."),
    ("HocSinh", "nguoi_giam_ho", "Không", "Họ tên người giám hộ."),
    ("HocSinh", "lop", "Có", "Lớp của năm học hiện tại (đã có, hoặc khai ở trang Lop)."),
    ("HocSinh", "stt", "Không", "Số thứ tự trong lớp."),
    ("PhanCong", "lop", "Có", "Lớp của năm học hiện tại (đã có, hoặc khai ở trang Lop)."),
    ("PhanCong", "mon", "Có", "Mã môn (ví dụ toan, ngu_van) hoặc tên môn (ví dụ Toán, Ngữ văn)."),
    ("PhanCong", "giao_vien", "Có", "Tên đăng nhập hoặc email của giáo viên dạy môn đó."),
]


def _guide_write(guide) -> None:
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    guide.append([GUIDE_TITLE])
    guide["A1"].font = Font(bold=True, size=13)
    for note in GUIDE_NOTES:
        guide.append([note])
    guide.append([])
    guide.append(["Trang", "Cột", "Bắt buộc", "Ý nghĩa"])
    for cell in guide[guide.max_row]:
        cell.font, cell.fill = bold, fill
    for row in GUIDE_COLUMNS:
        guide.append(list(row))
    guide.append([])
    guide.append(["Mã môn", "Tên môn"])
    for cell in guide[guide.max_row]:
        cell.font, cell.fill = bold, fill
    for code, name in SUBJECT_NAMES.items():
        guide.append([code, name])
    for letter, width in zip("ABCD", (14, 36, 22, 80), strict=True):
        guide.column_dimensions[letter].width = width


def import_template() -> bytes:
    """The workbook to fill in: the three sheets with their header and one example row, and a guide."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    example = Font(italic=True, color="666666")
    for name, columns in COLUMNS.items():
        sheet = workbook.create_sheet(name)
        sheet.append(list(columns))
        sheet.append(list(EXAMPLES[name]))
        for index, column in enumerate(columns, start=1):
            letter = get_column_letter(index)
            sheet.column_dimensions[letter].width = WIDTHS[column]
            header = sheet.cell(row=1, column=index)
            header.font, header.fill = bold, fill
            cell = sheet.cell(row=2, column=index)
            cell.font = example
            # Codes typed as text keep their leading zeros (ID numbers start with 0).
            if column in TEXT_COLUMNS:
                sheet.column_dimensions[letter].number_format = "@"
                cell.number_format = "@"
            elif column == "ngay_sinh":
                sheet.column_dimensions[letter].number_format = "DD/MM/YYYY"
                cell.number_format = "DD/MM/YYYY"
            elif column == "gioi_tinh":
                sexes = DataValidation(type="list", formula1='"Nam,Nữ"', allow_blank=True)
                sheet.add_data_validation(sexes)
                sexes.add(f"{letter}2:{letter}{MAX_ROWS}")
        sheet.freeze_panes = "A2"
    _guide_write(workbook.create_sheet(GUIDE_SHEET))
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
