"""Checking the workbook against the school's data: the plan of what an import would write.

Every row of every sheet is checked, in a fixed number of queries whatever the size of the file;
each problem is collected (located by sheet, row and column), not raised, so the refusal can list
them all. A plan without problems is what apply writes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.models import RoleAssignment, School, User

from ..choices import EnrolmentStatus, Sex
from ..curriculum import SUBJECT_NAMES
from ..identity import PersonalIdError, personal_id_check
from ..models import (
    CurriculumEntry,
    Enrolment,
    SchoolClass,
    SchoolYear,
    Student,
    Subject,
    TeachingAssignment,
)
from ..services import class_closed_reason, grades_for_levels
from .workbook import (
    ASSIGNMENT_SHEET,
    CLASS_SHEET,
    COLUMNS,
    STUDENT_SHEET,
    ImportProblem,
    _date,
    _personal_id_text,
    _Sheet,
    _text,
    _whole_number,
)

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
    limit = SchoolClass._meta.get_field("name").max_length
    assert limit is not None  # a CharField's
    for number, row in sheet.rows:
        name = _required(plan, CLASS_SHEET, number, row, "ten_lop")
        key = _class_key(name)
        if name and len(name) > limit:
            plan.problem(
                CLASS_SHEET, number, "ten_lop", _("At most %(limit)d characters.") % {"limit": limit}
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
        assert plan.year is not None  # _plan checks no sheet without a current year
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
        for known in Enrolment.objects.filter(
            student__in=list(existing.values()), school_class__school_year=plan.year
        ).select_related("school_class"):
            enrolments.setdefault(known.student_id, []).append(known)

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

        enrolment, refusal = _enrolment_in(
            class_key, [] if is_new else enrolments.get(student.pk, []), plan.existing_classes.get(class_key)
        )
        if refusal:
            plan.problem(STUDENT_SHEET, number, "lop", refusal)
            continue
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


def _enrolment_in(
    class_key: str, this_year: list[Enrolment], target: SchoolClass | None
) -> tuple[Enrolment | None, str]:
    """The student's active enrolment in the class named, or why the row cannot enrol them there.

    Moving a student between classes, or taking back one who left this year, closes or opens an
    enrolment with a date and a reason: done on purpose, not as a side effect of a spreadsheet.
    A class whose year the principal approved takes no student in and lets none out: that reason
    comes first, it is the one the user cannot work around.
    """
    active = [e for e in this_year if e.status == EnrolmentStatus.ACTIVE]
    for enrolment in active:
        if _class_key(enrolment.school_class.name) == class_key:
            return enrolment, ""
    for school_class in [e.school_class for e in active] + ([target] if target is not None else []):
        if school_class.closed_at is not None:
            return None, class_closed_reason(school_class, "students")
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


def _class_changes(plan: _Plan):
    """(class key, sheet, row, column, change) for every row that changes an existing class.

    Change is a key of schools.services.CLASS_CLOSED_REASONS. New classes and unchanged rows
    are not listed: importing again the file that built an approved class is still fine.
    """
    for item in plan.classes:
        existing, homeroom = item.existing, item.homeroom
        if existing is not None and homeroom is not None and homeroom.pk != existing.homeroom_teacher_id:
            yield _class_key(item.name), CLASS_SHEET, item.row, "gvcn", "homeroom"
    for student in plan.students:
        if student.enrolment is None:
            yield student.class_key, STUDENT_SHEET, student.row, "lop", "students"
        elif student.number is not None and student.number != student.enrolment.number:
            yield student.class_key, STUDENT_SHEET, student.row, "stt", "number"
    for assignment in plan.assignments:
        if assignment.current_teacher_id != assignment.teacher.pk:
            yield assignment.class_key, ASSIGNMENT_SHEET, assignment.row, "giao_vien", "assignments"


def _changed_class_ids(plan: _Plan) -> set[int]:
    """The existing classes the plan writes to (for the lock taken before writing)."""
    return {
        plan.existing_classes[key].pk for key, *_rest in _class_changes(plan) if key in plan.existing_classes
    }


def _closed_class_problems(plan: _Plan) -> list[ImportProblem]:
    """A problem for each row that would change a class whose year the principal approved.

    Run twice: while planning (on the classes as read, so the refusal lists every problem at
    once) and again in the writing transaction on the rows locked (closed_at read under lock).
    """
    problems = []
    for key, sheet, row, column, change in _class_changes(plan):
        school_class = plan.existing_classes.get(key)
        if school_class is not None and school_class.closed_at is not None:
            problems.append(ImportProblem(sheet, row, column, class_closed_reason(school_class, change)))
    return problems


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
    plan.problems.extend(_closed_class_problems(plan))
    return plan
