"""The score-sheet export: one sheet per subject, the grade book's values, a constant number of queries."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from schools.models import CurriculumEntry, Enrolment, SchoolClass, Subject
from schools.services import class_create, student_enrol
from tests.conftest import student_make
from transcripts.exports import score_sheet_export
from transcripts.models import PrimarySubjectAssessment, SubjectTermScores
from transcripts.selectors import gradebook_for

HEADER_ROW = 4


def enrolments(school_class) -> list[Enrolment]:
    return list(Enrolment.objects.filter(school_class=school_class).order_by("number"))


def rows_of(sheet) -> list[tuple]:
    return list(sheet.iter_rows(values_only=True))


def export(school_class, term=1, school=None) -> openpyxl.Workbook:
    return openpyxl.load_workbook(
        io.BytesIO(score_sheet_export(school_class=school_class, term=term, school=school))
    )


@pytest.fixture
def toan_scores(secondary_class):
    first, second = enrolments(secondary_class)[:2]
    toan = Subject.objects.get(code="toan")
    # (7 + 8 + 6 + 9 + 2·7 + 3·8,5) / 9 = 7,72… → 7,7
    SubjectTermScores.objects.create(
        enrolment=first,
        subject=toan,
        term=1,
        regular_1=Decimal(7),
        regular_2=Decimal(8),
        regular_3=Decimal(6),
        regular_4=Decimal(9),
        mid=Decimal(7),
        end=Decimal("8.5"),
        comment="Tiến bộ rõ",
    )
    SubjectTermScores.objects.create(enrolment=second, subject=toan, term=1, regular_1=Decimal("6.5"))
    SubjectTermScores.objects.create(
        enrolment=first, subject=Subject.objects.get(code="gdtc"), term=1, level="Đ", comment="Tích cực"
    )
    return first


def test_a_secondary_class_gets_one_sheet_per_subject_of_its_curriculum(school, secondary_class, toan_scores):
    workbook = export(secondary_class, school=school)

    subjects = [
        e.subject.name
        for e in CurriculumEntry.objects.filter(school_year=secondary_class.school_year, grade=8)
        .select_related("subject")
        .order_by("position")
    ]
    assert len(workbook.sheetnames) == len(subjects) == 12
    assert all(len(title) <= 31 for title in workbook.sheetnames)
    assert workbook.sheetnames[:2] == ["Ngữ văn", "Toán"]
    assert "Hoạt động trải nghiệm, hướng ng" in workbook.sheetnames  # cut to Excel's 31 characters
    for title, name in zip(workbook.sheetnames, subjects, strict=True):
        assert name.startswith(title)


def test_the_title_row_names_the_school_class_term_and_year(school, secondary_class, toan_scores):
    title = rows_of(export(secondary_class, school=school)["Toán"])[0][0]
    for part in (school.name, "Lớp 8A", "Học kì I", "Năm học 2025-2026"):
        assert part in title
    assert "Học kì II" in rows_of(export(secondary_class, term=2, school=school)["Toán"])[0][0]


def test_a_scored_subject_has_its_scores_and_the_average_of_the_grade_book(
    school, secondary_class, toan_scores
):
    rows = rows_of(export(secondary_class, school=school)["Toán"])

    assert list(rows[HEADER_ROW - 1]) == [
        "STT", "Mã học sinh", "Họ và tên", "TX1", "TX2", "TX3", "TX4", "GK", "CK", "ĐTBmhk", "Nhận xét",
    ]  # fmt: skip
    first, second = rows[HEADER_ROW], rows[HEADER_ROW + 1]
    assert first[:3] == (1, "CS001", "Nguyễn Văn An Hai")
    assert second[2] == "Trần Thị Bình Hai"
    assert first[3:9] == (7, 8, 6, 9, 7, 8.5)
    entry = CurriculumEntry.objects.get(
        school_year=secondary_class.school_year, grade=8, subject__code="toan"
    )
    book = gradebook_for(school_class=secondary_class, entry=entry, term=1)
    assert book.rows[0].average == "7,7"
    assert first[9] == pytest.approx(7.7)
    assert first[10] == "Tiến bộ rõ"
    assert second[3] == 6.5
    assert second[9] is None  # incomplete row: no average yet
    assert len(rows) == HEADER_ROW + 4  # the four students of 8A


def test_a_comment_subject_has_pass_or_not_and_the_comment(school, secondary_class, toan_scores):
    rows = rows_of(export(secondary_class, school=school)["Giáo dục thể chất"])
    assert list(rows[HEADER_ROW - 1]) == ["STT", "Mã học sinh", "Họ và tên", "Đ/CĐ", "Nhận xét"]
    assert rows[HEADER_ROW][3:] == ("Đ", "Tích cực")


def test_a_primary_class_exports_the_end_of_term_period(school, primary_class):
    pupil = enrolments(primary_class)[0]
    PrimarySubjectAssessment.objects.create(
        enrolment=pupil,
        subject=Subject.objects.get(code="toan"),
        period="end2",
        level="T",
        test_score=9,
        comment="Em tính toán nhanh",
    )
    PrimarySubjectAssessment.objects.create(
        enrolment=pupil, subject=Subject.objects.get(code="toan"), period="end1", level="H", test_score=6
    )

    workbook = export(primary_class, term=2, school=school)

    assert len(workbook.sheetnames) == 11
    toan = rows_of(workbook["Toán"])
    assert "Cuối năm học" in toan[0][0]
    assert list(toan[HEADER_ROW - 1]) == [
        "STT",
        "Mã học sinh",
        "Họ và tên",
        "Mức đạt được",
        "Điểm KTĐK",
        "Nhận xét",
    ]
    assert toan[HEADER_ROW] == (1, "TH001", "Nguyễn Văn An", "T", 9, "Em tính toán nhanh")
    # A subject without periodic tests has no test column.
    assert list(rows_of(workbook["Đạo đức"])[HEADER_ROW - 1]) == [
        "STT",
        "Mã học sinh",
        "Họ và tên",
        "Mức đạt được",
        "Nhận xét",
    ]
    # Term I is the end-of-term-I period.
    assert rows_of(export(primary_class, term=1, school=school)["Toán"])[HEADER_ROW][3:5] == ("H", 6)


def test_the_export_takes_the_same_number_of_queries_whatever_the_class_size(
    school, secondary_class, toan_scores
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            score_sheet_export(school_class=secondary_class, term=1, school=school)
        return len(captured)

    queries()  # loads the class's school year once
    before = queries()
    for n in range(5):
        student_enrol(
            student=student_make(f"EX{n}", f"Học Sinh Mới {n}", 1, dt.date(2012, 6, n + 1)),
            school_class=secondary_class,
            enrolled_on=secondary_class.school_year.starts_on,
            number=10 + n,
        )
    assert queries() == before


def test_the_school_defaults_to_the_connections_school(in_school, secondary_class):
    assert in_school.name in rows_of(export(secondary_class)["Toán"])[0][0]


# --- The download ----------------------------------------------------------------------------


def url(school, school_class, query="?hk=1"):
    return f"/truong/{school.code}/du-lieu/xuat/{school_class.pk}/{query}"


@pytest.mark.parametrize(
    ("persona_name", "status"),
    [
        ("school_admin", 200),
        ("principal", 200),
        ("vice_principal", 200),
        ("homeroom_teacher", 200),  # 8A's homeroom teacher
        ("subject_teacher", 403),
        ("colleague", 403),
        ("department_officer", 403),
        ("teacher_of_another_school", 404),
    ],
)
def test_the_score_sheet_permission_matrix(client_as, persona, school, secondary_class, persona_name, status):
    response = client_as(persona(persona_name)).get(url(school, secondary_class))
    assert response.status_code == status


def test_a_homeroom_teacher_exports_only_their_own_class(client_as, homeroom_teacher, school, in_school):
    other = class_create(
        school_year=SchoolClass.objects.get(name="8A").school_year,
        name="9A",
        grade=9,
        levels=in_school.levels,
    )
    assert client_as(homeroom_teacher).get(url(school, other)).status_code == 403


def test_the_score_sheet_downloads_as_an_xlsx_file(client_as, principal, school, secondary_class):
    response = client_as(principal).get(url(school, secondary_class, "?hk=2"))

    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert 'filename="bang-diem-8a-hk2-2025-2026.xlsx"' in response["Content-Disposition"]
    assert "Toán" in openpyxl.load_workbook(io.BytesIO(response.content)).sheetnames


def test_an_unknown_class_or_term_answers_404(client_as, principal, school, secondary_class):
    client = client_as(principal)
    assert client.get(f"/truong/{school.code}/du-lieu/xuat/999999/").status_code == 404
    assert client.get(url(school, secondary_class, "?hk=3")).status_code == 404
    assert client.get(url(school, secondary_class, "")).status_code == 200  # term I by default
