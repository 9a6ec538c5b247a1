"""Excel imports of classes, students and teaching assignments: all or nothing, idempotent, scoped."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from schools.imports import (
    COLUMNS,
    MAX_BYTES,
    SchoolImportError,
    import_template,
    school_data_import,
)
from schools.models import Enrolment, SchoolClass, Student, TeachingAssignment

STUDENT_HEADER = tuple(COLUMNS["HocSinh"])


def student_row(code, name, sex, born, personal_id="", temporary="", class_name="6A", number=None, **extra):
    row = dict.fromkeys(STUDENT_HEADER, "")
    row.update(
        ma_hoc_sinh=code,
        ho_ten=name,
        gioi_tinh=sex,
        ngay_sinh=born,
        so_dinh_danh=personal_id,
        ma_tam=temporary,
        lop=class_name,
        stt=number,
        **extra,
    )
    return [row[c] for c in STUDENT_HEADER]


def good_sheets() -> dict[str, list[list]]:
    """Two new classes and an existing one, three new students, three assignments."""
    return {
        "Lop": [
            ["ten_lop", "khoi", "gvcn"],
            ["6A", 6, "homeroom_teacher"],
            ["1B", 1, "colleague@test.local"],
            ["8A", 8, "colleague"],  # exists: its homeroom teacher changes
        ],
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row(
                "HS001",
                "Nguyễn Thị Hoa",
                "Nữ",
                dt.datetime(2014, 5, 2),
                "010314123456",
                number=1,
                noi_sinh="Hà Nội",
                dan_toc="Kinh",
                ho_ten_me="Trần Thị Mai",
            ),
            student_row("HS002", "Trần Văn Đức", "Nam", "07/11/2014", temporary="TAM-002", number=2),
            student_row("HS003", "Lê Minh Khôi", "nam", dt.date(2020, 1, 1), "010220000001", class_name="1B"),
        ],
        "PhanCong": [
            ["lop", "mon", "giao_vien"],
            ["6A", "toan", "subject_teacher"],
            ["6A", "Ngữ văn", "colleague@test.local"],
            ["1B", "tieng_viet", "homeroom_teacher"],
        ],
    }


def xlsx(sheets: dict[str, list[list]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def run_import(actor, school, sheets=None, data=None):
    return school_data_import(
        actor=actor, school=school, data=data if data is not None else xlsx(sheets), filename="du-lieu.xlsx"
    )


def row_counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (SchoolClass, Student, Enrolment, TeachingAssignment))


def refused(actor, school, sheets=None, data=None) -> set[tuple[str, int, str]]:
    """Import a bad file; check that nothing was written; return where the problems are."""
    before = row_counts()
    with pytest.raises(SchoolImportError) as caught:
        run_import(actor, school, sheets, data)
    assert row_counts() == before
    return {(p.sheet, p.row, p.column) for p in caught.value.problems}


def test_a_good_file_creates_classes_students_enrolments_and_assignments(
    school_admin, colleague, homeroom_teacher, subject_teacher, in_school
):
    report = run_import(school_admin, in_school, good_sheets())

    counts = {s.sheet: (s.created, s.updated, s.unchanged) for s in report.sheets}
    assert counts == {"Lop": (2, 1, 0), "HocSinh": (3, 0, 0), "PhanCong": (3, 0, 0)}
    six_a = SchoolClass.objects.get(name="6A")
    assert (six_a.grade, six_a.ruleset, six_a.homeroom_teacher) == (6, "tt22", homeroom_teacher)
    assert SchoolClass.objects.get(name="1B").ruleset == "tt27"
    assert SchoolClass.objects.get(name="8A").homeroom_teacher == colleague
    hoa = Student.objects.get(student_code="HS001")
    assert (hoa.full_name, hoa.sex, hoa.date_of_birth, hoa.personal_id) == (
        "Nguyễn Thị Hoa",
        2,
        dt.date(2014, 5, 2),
        "010314123456",
    )
    assert (hoa.place_of_birth, hoa.ethnicity, hoa.mother_name, hoa.nationality) == (
        "Hà Nội",
        "Kinh",
        "Trần Thị Mai",
        "Việt Nam",
    )
    duc = Student.objects.get(student_code="HS002")
    assert (duc.personal_id, duc.temporary_code, duc.date_of_birth) == (None, "TAM-002", dt.date(2014, 11, 7))
    enrolled = {
        (e.student.student_code, e.school_class.name, e.number, e.status)
        for e in Enrolment.objects.filter(student__student_code__startswith="HS").select_related(
            "student", "school_class"
        )
    }
    assert enrolled == {
        ("HS001", "6A", 1, "active"),
        ("HS002", "6A", 2, "active"),
        ("HS003", "1B", 0, "active"),
    }
    assigned = {
        (a.school_class.name, a.subject.code, a.teacher.username)
        for a in TeachingAssignment.objects.filter(school_class__name__in=["6A", "1B"]).select_related(
            "school_class", "subject", "teacher"
        )
    }
    assert assigned == {
        ("6A", "toan", "subject_teacher"),
        ("6A", "ngu_van", "colleague"),
        ("1B", "tieng_viet", "homeroom_teacher"),
    }


def test_importing_the_same_file_again_changes_nothing_and_saves_nothing(principal, in_school):
    data = xlsx(good_sheets())
    run_import(principal, in_school, data=data)

    with CaptureQueriesContext(connection) as queries:
        report = run_import(principal, in_school, data=data)

    counts = {s.sheet: (s.created, s.updated, s.unchanged) for s in report.sheets}
    assert counts == {"Lop": (0, 0, 3), "HocSinh": (0, 0, 3), "PhanCong": (0, 0, 3)}
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []


def test_the_checks_take_a_fixed_number_of_queries_whatever_the_number_of_rows(school_admin, in_school):
    def queries_for(students: int) -> int:
        sheets = good_sheets()
        sheets["HocSinh"] += [
            student_row(f"HX{n:03d}", "Học Sinh", "Nam", "01/01/2014", temporary=f"T{n}")
            for n in range(students)
        ]
        sheets["HocSinh"].append(student_row("HS999", "", "Nam", "01/01/2014", temporary="T"))  # refused
        with CaptureQueriesContext(connection) as queries, pytest.raises(SchoolImportError):
            run_import(school_admin, in_school, sheets)
        return len(queries)

    queries_for(1)  # the actor's roles are read once and cached on the user
    assert queries_for(2) == queries_for(40)


def test_an_updated_file_updates_students_by_their_code(school_admin, in_school):
    run_import(school_admin, in_school, good_sheets())
    sheets = good_sheets()
    sheets["HocSinh"][1] = student_row(
        "HS001",
        "Nguyễn Thị Hoa",
        "Nữ",
        dt.datetime(2014, 5, 2),
        "010314123456",
        number=5,
        noi_sinh="Hải Phòng",
        dan_toc="Kinh",
        ho_ten_me="Trần Thị Mai",
    )
    sheets["PhanCong"][1] = ["6A", "toan", "colleague"]

    report = run_import(school_admin, in_school, sheets)

    assert (report.counts("HocSinh").updated, report.counts("HocSinh").unchanged) == (1, 2)
    assert (report.counts("PhanCong").updated, report.counts("PhanCong").unchanged) == (1, 2)
    assert Student.objects.filter(student_code="HS001").count() == 1
    assert Student.objects.get(student_code="HS001").place_of_birth == "Hải Phòng"
    assert Enrolment.objects.get(student__student_code="HS001").number == 5
    assert TeachingAssignment.objects.get(school_class__name="6A", subject__code="toan").teacher.username == (
        "colleague"
    )


def test_a_student_already_in_the_class_is_updated_not_enrolled_twice(school_admin, in_school):
    pupil = Student.objects.get(student_code="CS001")
    sheets = {
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row(
                "CS001", "Nguyễn Văn An Hải", "Nam", pupil.date_of_birth, pupil.personal_id, class_name="8A"
            ),
        ]
    }

    report = run_import(school_admin, in_school, sheets)

    assert report.counts("HocSinh").updated == 1
    pupil.refresh_from_db()
    assert pupil.full_name == "Nguyễn Văn An Hải"
    assert Enrolment.objects.filter(student=pupil).count() == 1


def test_an_empty_personal_id_cell_keeps_the_number_already_recorded(school_admin, in_school):
    pupil = Student.objects.get(student_code="CS002")
    sheets = {
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row("CS002", pupil.full_name, "Nữ", pupil.date_of_birth, "", class_name="8A"),
        ]
    }
    run_import(school_admin, in_school, sheets)
    assert Student.objects.get(student_code="CS002").personal_id == pupil.personal_id


def test_an_id_number_typed_as_a_number_gets_its_leading_zero_back(school_admin, in_school):
    sheets = good_sheets()
    sheets["HocSinh"][1][STUDENT_HEADER.index("so_dinh_danh")] = 10314123456
    run_import(school_admin, in_school, sheets)
    assert Student.objects.get(student_code="HS001").personal_id == "010314123456"


def _with_student(**changes):
    def change(sheets):
        row = sheets["HocSinh"][1]
        for column, value in changes.items():
            row[STUDENT_HEADER.index(column)] = value

    return change


def _append(sheet, row):
    return lambda sheets: sheets[sheet].append(row)


def _taken_id(sheets):
    taken = Student.objects.get(student_code="TH001")
    sheets["HocSinh"][1] = student_row(
        "HS001", "Nguyễn Thị Hoa", "Nam", taken.date_of_birth, taken.personal_id
    )


def _drop_column(sheet, column):
    def change(sheets):
        index = sheets[sheet][0].index(column)
        for row in sheets[sheet]:
            del row[index]

    return change


BAD_FILES = {
    "id with 11 digits": (_with_student(so_dinh_danh="01031412345"), ("HocSinh", 2, "so_dinh_danh")),
    "id with letters": (_with_student(so_dinh_danh="01031412345A"), ("HocSinh", 2, "so_dinh_danh")),
    "id of another birth year": (_with_student(so_dinh_danh="010315123456"), ("HocSinh", 2, "so_dinh_danh")),
    "id of the other sex": (_with_student(so_dinh_danh="010214123456"), ("HocSinh", 2, "so_dinh_danh")),
    "id of an unknown province": (_with_student(so_dinh_danh="003314123456"), ("HocSinh", 2, "so_dinh_danh")),
    "id of another student": (_taken_id, ("HocSinh", 2, "so_dinh_danh")),
    "no id and no temporary code": (_with_student(so_dinh_danh=""), ("HocSinh", 2, "ma_tam")),
    "unknown class": (_with_student(lop="9Z"), ("HocSinh", 2, "lop")),
    "duplicate student code": (
        _append("HocSinh", student_row("HS002", "Trùng Mã", "Nam", "01/01/2014", temporary="X")),
        ("HocSinh", 5, "ma_hoc_sinh"),
    ),
    "impossible date": (_with_student(ngay_sinh="31/02/2014"), ("HocSinh", 2, "ngay_sinh")),
    "date in words": (_with_student(ngay_sinh="hai tháng năm"), ("HocSinh", 2, "ngay_sinh")),
    "future date": (_with_student(ngay_sinh="01/01/2099"), ("HocSinh", 2, "ngay_sinh")),
    "bad sex": (_with_student(gioi_tinh="F"), ("HocSinh", 2, "gioi_tinh")),
    "bad number in class": (_with_student(stt="một"), ("HocSinh", 2, "stt")),
    "name too long": (_with_student(ho_ten="A" * 101), ("HocSinh", 2, "ho_ten")),
    "missing header column": (_drop_column("HocSinh", "ho_ten"), ("HocSinh", 1, "ho_ten")),
    "unknown header column": (
        lambda s: s["Lop"][0].__setitem__(2, "chu_nhiem"),
        ("Lop", 1, "chu_nhiem"),
    ),
    "grade out of range": (_append("Lop", ["13A", 13, ""]), ("Lop", 5, "khoi")),
    "grade the school does not teach": (_append("Lop", ["10A", 10, ""]), ("Lop", 5, "khoi")),
    "class named twice": (_append("Lop", ["6a", 6, ""]), ("Lop", 5, "ten_lop")),
    "existing class in another grade": (_append("Lop", ["5A", 4, ""]), ("Lop", 5, "khoi")),
    "unknown homeroom teacher": (_append("Lop", ["7A", 7, "nobody@test.local"]), ("Lop", 5, "gvcn")),
    "unknown teacher": (_append("PhanCong", ["6A", "khtn", "khong_co_ai"]), ("PhanCong", 5, "giao_vien")),
    "teacher of another school": (
        _append("PhanCong", ["6A", "khtn", "teacher_of_another_school"]),
        ("PhanCong", 5, "giao_vien"),
    ),
    "subject not in the grade's curriculum": (
        _append("PhanCong", ["6A", "tieng_viet", "subject_teacher"]),
        ("PhanCong", 5, "mon"),
    ),
    "unknown subject": (_append("PhanCong", ["6A", "Thiên văn", "subject_teacher"]), ("PhanCong", 5, "mon")),
    "subject assigned twice": (_append("PhanCong", ["6A", "Toán", "colleague"]), ("PhanCong", 5, "mon")),
    "assignment to an unknown class": (
        _append("PhanCong", ["6Z", "toan", "colleague"]),
        ("PhanCong", 5, "lop"),
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_file_with_a_bad_row_is_refused_and_nothing_is_written(school_admin, in_school, case):
    change, where = BAD_FILES[case]
    sheets = good_sheets()
    change(sheets)
    assert where in refused(school_admin, in_school, sheets)


def test_every_problem_of_the_file_is_reported_not_just_the_first(school_admin, in_school):
    sheets = good_sheets()
    sheets["Lop"].append(["10A", 10, ""])
    sheets["HocSinh"][1][STUDENT_HEADER.index("so_dinh_danh")] = "010315123456"
    sheets["HocSinh"][2][STUDENT_HEADER.index("ngay_sinh")] = "32/01/2014"
    sheets["PhanCong"].append(["6A", "khtn", "teacher_of_another_school"])

    assert refused(school_admin, in_school, sheets) == {
        ("Lop", 5, "khoi"),
        ("HocSinh", 2, "so_dinh_danh"),
        ("HocSinh", 3, "ngay_sinh"),
        ("PhanCong", 5, "giao_vien"),
    }


def test_moving_a_student_to_another_class_is_refused_with_a_clear_message(school_admin, in_school):
    pupil = Student.objects.get(student_code="CS001")
    sheets = good_sheets()
    sheets["HocSinh"].append(
        student_row("CS001", pupil.full_name, "Nam", pupil.date_of_birth, pupil.personal_id, class_name="6A")
    )
    with translation.override("vi"), pytest.raises(SchoolImportError) as caught:
        run_import(school_admin, in_school, sheets)
    [problem] = caught.value.problems
    assert (problem.sheet, problem.row, problem.column) == ("HocSinh", 5, "lop")
    assert "Học sinh đang học lớp 8A; chuyển lớp chưa được hỗ trợ qua nhập tệp." in problem.message
    with translation.override("vi"):
        assert str(problem).startswith("Trang HocSinh, dòng 5, cột lop: ")


def test_a_student_who_left_this_year_is_not_enrolled_again_by_a_file(school_admin, in_school):
    pupil = Student.objects.get(student_code="CS003")
    Enrolment.objects.filter(student=pupil).update(status="left", left_on=dt.date(2025, 10, 1))
    sheets = good_sheets()
    sheets["HocSinh"].append(
        student_row("CS003", pupil.full_name, "Nữ", pupil.date_of_birth, pupil.personal_id, class_name="6A")
    )
    assert refused(school_admin, in_school, sheets) == {("HocSinh", 5, "lop")}


def test_a_recorded_id_number_must_agree_with_a_changed_birth_date(school_admin, in_school):
    pupil = Student.objects.get(student_code="CS001")
    sheets = {
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row("CS001", pupil.full_name, "Nam", dt.date(2013, 4, 1), "", class_name="8A"),
        ]
    }
    assert refused(school_admin, in_school, sheets) == {("HocSinh", 2, "so_dinh_danh")}


def test_personal_id_problems_are_explained_in_vietnamese(school_admin, in_school):
    sheets = good_sheets()
    sheets["HocSinh"][1][STUDENT_HEADER.index("so_dinh_danh")] = "0103141234"
    with translation.override("vi"), pytest.raises(SchoolImportError) as caught:
        run_import(school_admin, in_school, sheets)
    assert [p.message for p in caught.value.problems] == ["Số định danh cá nhân gồm đúng 12 chữ số."]


def test_a_sheet_with_another_name_is_refused(school_admin, in_school):
    sheets = good_sheets()
    sheets["Hoc sinh"] = sheets.pop("HocSinh")
    assert ("Hoc sinh", 0, "") in refused(school_admin, in_school, sheets)


def test_a_workbook_without_any_of_the_sheets_is_refused(school_admin, in_school):
    assert refused(school_admin, in_school, {"Sheet1": [["ten_lop", "khoi"], ["6A", 6]]}) == {
        ("Sheet1", 0, "")
    }
    assert refused(school_admin, in_school, {"HuongDan": [["x"]]}) == {("", 0, "")}


def test_empty_extra_sheets_and_absent_sheets_are_fine(school_admin, in_school):
    sheets = {"Lop": good_sheets()["Lop"], "Sheet1": []}
    report = run_import(school_admin, in_school, sheets)
    assert [s.sheet for s in report.sheets] == ["Lop"]


@pytest.mark.parametrize(
    "data",
    [
        b"ma_hoc_sinh,ho_ten\nHS001,An\n",
        b"",
        b"PK\x03\x04 not really a zip",
        "zip",
        "big",
    ],
    ids=["csv", "empty", "broken zip", "zip that is not a workbook", "over 5 MB"],
)
def test_a_file_that_is_not_an_xlsx_workbook_is_refused(school_admin, in_school, data):
    if data == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hello.txt", "xin chào")
        data = buffer.getvalue()
    elif data == "big":
        data = xlsx(good_sheets()) + b"\0" * MAX_BYTES
    assert refused(school_admin, in_school, data=data) == {("", 0, "")}


@pytest.mark.parametrize("persona_name", ["subject_teacher", "homeroom_teacher", "vice_principal"])
def test_only_the_school_administrator_and_the_principal_may_import(persona, in_school, persona_name):
    before = row_counts()
    with pytest.raises(PermissionDenied):
        run_import(persona(persona_name), in_school, good_sheets())
    assert row_counts() == before


def test_the_template_has_the_three_sheets_a_guide_and_the_importers_columns(school_admin, in_school):
    workbook = openpyxl.load_workbook(io.BytesIO(import_template()))

    assert workbook.sheetnames == ["Lop", "HocSinh", "PhanCong", "HuongDan"]
    for name, columns in COLUMNS.items():
        rows = list(workbook[name].iter_rows(values_only=True))
        assert list(rows[0]) == list(columns)
        assert len(rows) == 2  # the header and one example
        assert workbook[name].column_dimensions["A"].width > 5
    guide = [cell for row in workbook["HuongDan"].iter_rows(values_only=True) for cell in row if cell]
    assert "so_dinh_danh" in guide
    assert any("Xóa dòng ví dụ" in str(cell) for cell in guide)
    # The untouched template names teachers who do not exist: it cannot be imported by mistake.
    refused(school_admin, in_school, data=import_template())


# --- The page --------------------------------------------------------------------------------


def page(school, suffix=""):
    return f"/truong/{school.code}/du-lieu/nhap/{suffix}"


@pytest.mark.parametrize(
    ("persona_name", "status"),
    [
        ("school_admin", 200),
        ("principal", 200),
        ("vice_principal", 403),
        ("homeroom_teacher", 403),
        ("subject_teacher", 403),
        ("department_officer", 403),  # supervisor with a data grant: reads, does not import
        ("teacher_of_another_school", 404),
    ],
)
def test_the_import_page_permission_matrix(client_as, persona, school, persona_name, status):
    client = client_as(persona(persona_name))
    assert client.get(page(school)).status_code == status
    assert client.get(page(school, "mau.xlsx")).status_code == status


def test_the_template_downloads_as_an_xlsx_file(client_as, school_admin, school):
    response = client_as(school_admin).get(page(school, "mau.xlsx"))
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response["Content-Disposition"]
    assert openpyxl.load_workbook(io.BytesIO(response.content)).sheetnames[0] == "Lop"


def test_the_page_offers_the_template_and_an_upload_form(client_as, school_admin, school):
    body = client_as(school_admin).get(page(school)).content.decode()
    assert page(school, "mau.xlsx") in body
    assert 'type="file"' in body
    assert 'enctype="multipart/form-data"' in body


def test_uploading_a_good_file_shows_the_counts(client_as, school_admin, school):
    upload = SimpleUploadedFile("lop-6.xlsx", xlsx(good_sheets()))
    response = client_as(school_admin).post(page(school), {"file": upload}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    report = response.context["report"]
    assert report.counts("HocSinh").created == 3
    assert "lop-6.xlsx" in response.content.decode()
    connection.set_tenant(school)
    assert Student.objects.filter(student_code__in=["HS001", "HS002", "HS003"]).count() == 3


def test_uploading_a_bad_file_lists_every_problem_and_writes_nothing(client_as, school_admin, school):
    sheets = good_sheets()
    sheets["HocSinh"][1][STUDENT_HEADER.index("so_dinh_danh")] = "010315123456"
    sheets["PhanCong"].append(["6A", "khtn", "teacher_of_another_school"])
    upload = SimpleUploadedFile("sai.xlsx", xlsx(sheets))

    response = client_as(school_admin).post(page(school), {"file": upload}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    body = response.content.decode()
    assert "<td>so_dinh_danh</td>" in body
    assert "<td>giao_vien</td>" in body
    assert "teacher_of_another_school" in body
    assert len(response.context["problems"]) == 2
    connection.set_tenant(school)
    assert not SchoolClass.objects.filter(name="6A").exists()
    assert not Student.objects.filter(student_code="HS002").exists()


def test_uploading_without_a_file_shows_the_form_error(client_as, principal, school):
    response = client_as(principal).post(page(school), {})
    assert response.status_code == 400
    assert response.context["form"].errors
