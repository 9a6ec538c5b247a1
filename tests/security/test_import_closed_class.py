"""An import never changes a class whose year the principal approved (issue 9, finding 2).

Row by row, the Excel import refuses to add, move or renumber a student in an approved class,
to replace its homeroom teacher or any of its teachers; it says where and why, and writes
nothing. The check runs again in the writing transaction under the class row's lock, so an
approval that lands between the check and the write is still seen.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone, translation

from portal.models import School, User
from schools.imports import SchoolImportError
from schools.models import Enrolment, SchoolClass, SchoolYear, Student, TeachingAssignment
from tests.conftest import SCHOOLS
from tests.schools.test_imports import STUDENT_HEADER, row_counts, run_import, student_row
from tests.security.races import race_the_approval

APPROVED = "Lớp 8A đã được hiệu trưởng duyệt cuối năm: "
STUDENTS = APPROVED + "không thể thêm, chuyển hay bớt học sinh của lớp."


@pytest.fixture
def approved_8a(secondary_class):
    """8A with its year approved (the state class_year_close leaves; its checks are tested there)."""
    SchoolClass.objects.filter(pk=secondary_class.pk).update(closed_at=timezone.now())
    return SchoolClass.objects.get(pk=secondary_class.pk)


def refusal(actor, school, sheets) -> dict[tuple[str, int, str], str]:
    """Import in Vietnamese; check nothing was written; the problems by (sheet, row, column)."""
    before = row_counts()
    homerooms = dict(SchoolClass.objects.values_list("pk", "homeroom_teacher_id"))
    teachers = set(TeachingAssignment.objects.values_list("pk", "teacher_id"))
    with translation.override("vi"), pytest.raises(SchoolImportError) as caught:
        run_import(actor, school, sheets)
    assert row_counts() == before
    assert dict(SchoolClass.objects.values_list("pk", "homeroom_teacher_id")) == homerooms
    assert set(TeachingAssignment.objects.values_list("pk", "teacher_id")) == teachers
    return {(p.sheet, p.row, p.column): p.message for p in caught.value.problems}


def new_student(code="HS801", class_name="8A", number=None):
    return student_row(
        code,
        "Phan Văn Mới",
        "Nam",
        "03/03/2012",
        temporary=f"TAM-{code}",
        class_name=class_name,
        number=number,
    )


def test_an_import_cannot_add_a_student_to_an_approved_class(school_admin, in_school, approved_8a):
    sheets = {"HocSinh": [list(STUDENT_HEADER), new_student()]}

    assert refusal(school_admin, in_school, sheets) == {("HocSinh", 2, "lop"): STUDENTS}
    assert not Student.objects.filter(student_code="HS801").exists()


def test_an_import_cannot_replace_the_homeroom_teacher_of_an_approved_class(
    principal, in_school, approved_8a
):
    sheets = {"Lop": [["ten_lop", "khoi", "gvcn"], ["8A", 8, "colleague"]]}

    assert refusal(principal, in_school, sheets) == {
        ("Lop", 2, "gvcn"): APPROVED + "không thể thay giáo viên chủ nhiệm."
    }


def test_an_import_cannot_change_or_add_a_teaching_assignment_of_an_approved_class(
    school_admin, in_school, approved_8a
):
    sheets = {
        "PhanCong": [
            ["lop", "mon", "giao_vien"],
            ["8A", "toan", "colleague"],  # taught by subject_teacher
            ["8A", "khtn", "colleague"],  # not assigned yet
        ]
    }
    reason = APPROVED + "không thể thay đổi phân công giảng dạy."

    assert refusal(school_admin, in_school, sheets) == {
        ("PhanCong", 2, "giao_vien"): reason,
        ("PhanCong", 3, "giao_vien"): reason,
    }


def test_an_import_cannot_renumber_a_student_of_an_approved_class(school_admin, in_school, approved_8a):
    pupil = Student.objects.get(student_code="CS001")
    sheets = {
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row("CS001", pupil.full_name, "Nam", pupil.date_of_birth, pupil.personal_id, "", "8A", 7),
        ]
    }

    assert refusal(school_admin, in_school, sheets) == {
        ("HocSinh", 2, "stt"): APPROVED + "không thể thay đổi số thứ tự của học sinh trong lớp."
    }


def test_an_import_cannot_move_a_student_out_of_an_approved_class(school_admin, in_school, approved_8a):
    pupil = Student.objects.get(student_code="CS002")
    sheets = {
        "Lop": [["ten_lop", "khoi", "gvcn"], ["8B", 8, ""]],
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row("CS002", pupil.full_name, "Nữ", pupil.date_of_birth, pupil.personal_id, "", "8B"),
        ],
    }

    assert refusal(school_admin, in_school, sheets) == {("HocSinh", 2, "lop"): STUDENTS}


def test_every_row_touching_an_approved_class_is_reported_and_the_other_rows_are_not_written(
    school_admin, in_school, approved_8a
):
    sheets = {
        "Lop": [["ten_lop", "khoi", "gvcn"], ["8A", 8, "colleague"], ["6A", 6, "homeroom_teacher"]],
        "HocSinh": [list(STUDENT_HEADER), new_student(), new_student("HS601", "6A")],
        "PhanCong": [
            ["lop", "mon", "giao_vien"],
            ["8A", "ngu_van", "subject_teacher"],
            ["6A", "toan", "colleague"],
        ],
    }

    assert set(refusal(school_admin, in_school, sheets)) == {
        ("Lop", 2, "gvcn"),
        ("HocSinh", 2, "lop"),
        ("PhanCong", 2, "giao_vien"),
    }
    assert not SchoolClass.objects.filter(name="6A").exists()


def test_importing_again_what_an_approved_class_already_holds_is_accepted_and_changes_nothing(
    school_admin, homeroom_teacher, in_school, approved_8a
):
    pupil = Student.objects.get(student_code="CS001")
    number = Enrolment.objects.get(student=pupil).number
    sheets = {
        "Lop": [["ten_lop", "khoi", "gvcn"], ["8A", 8, homeroom_teacher.username]],
        "HocSinh": [
            list(STUDENT_HEADER),
            student_row(
                "CS001", pupil.full_name, "Nam", pupil.date_of_birth, pupil.personal_id, "", "8A", number
            ),
        ],
        "PhanCong": [["lop", "mon", "giao_vien"], ["8A", "toan", "subject_teacher"]],
    }

    report = run_import(school_admin, in_school, sheets)

    assert {s.sheet: (s.created, s.updated, s.unchanged) for s in report.sheets} == {
        "Lop": (0, 0, 1),
        "HocSinh": (0, 0, 1),
        "PhanCong": (0, 0, 1),
    }


# --- The approval lands between the check and the write ------------------------------------------


@pytest.fixture
def committed_class(django_db_blocker):
    """An open grade 9 class, committed so that two connections see it; removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    with django_db_blocker.unblock():
        school = School.objects.get(code=SCHOOLS["school"][0])
        try:
            with school:
                from schools.services import class_create

                year = SchoolYear.objects.get(is_current=True)
                school_class = class_create(school_year=year, name=f"9I-{tag}", grade=9, levels=school.levels)
            connection.set_schema_to_public()
            yield school, school_class
        finally:
            with school, transaction.atomic():
                # The class ends approved, which the database protects: lift the triggers for the
                # clean-up of this test's own rows only.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = replica")
                Enrolment.objects.filter(school_class__name=f"9I-{tag}").delete()
                Student.objects.filter(student_code=f"HS-{tag}").delete()
                SchoolClass.objects.filter(name=f"9I-{tag}").delete()
            connection.set_schema_to_public()


def test_an_approval_between_the_check_and_the_write_is_seen_and_the_import_refused(
    committed_class, django_db_blocker
):
    school, school_class = committed_class
    code = "HS-" + school_class.name.split("-")[1]
    sheets = {"HocSinh": [list(STUDENT_HEADER), new_student(code, school_class.name)]}

    def imports():
        actor = User.objects.get(username="school_admin")
        with translation.override("vi"):
            return run_import(actor, school, sheets)

    with django_db_blocker.unblock():
        outcome = race_the_approval(school, school_class.pk, imports)
        assert outcome.waited, f"the import did not wait for the approval: {outcome}"
        error = outcome.error
        assert isinstance(error, SchoolImportError), outcome
        assert [(p.sheet, p.row, p.column, p.message) for p in error.problems] == [
            (
                "HocSinh",
                2,
                "lop",
                f"Lớp {school_class.name} đã được hiệu trưởng duyệt cuối năm: "
                "không thể thêm, chuyển hay bớt học sinh của lớp.",
            )
        ]
        with school:
            assert not Student.objects.filter(student_code=code).exists()
            assert not Enrolment.objects.filter(school_class_id=school_class.pk).exists()
        connection.set_schema_to_public()
