"""Transfers and class moves keep the history: enrolments are closed, never deleted; an approved
class refuses every change to its students, numbers, name and teachers, whoever calls."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from schools.choices import EnrolmentStatus
from schools.models import Enrolment, SchoolClass, Subject
from schools.services import (
    class_create,
    class_update,
    enrolment_close,
    enrolment_move,
    enrolment_number_set,
    student_enrol,
    students_enrol,
    teaching_assignment_set,
)
from tests.conftest import student_make


def test_a_transfer_out_closes_the_enrolment_and_keeps_it(school_admin, school, secondary_class):
    enrolment = Enrolment.objects.filter(school_class=secondary_class).first()
    enrolment_close(
        actor=school_admin,
        school=school,
        enrolment=enrolment,
        on=dt.date(2026, 1, 10),
        status=EnrolmentStatus.TRANSFERRED_OUT,
        note="Chuyển đến Trường THCS Bắc Hà",
    )
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.left_on) == (EnrolmentStatus.TRANSFERRED_OUT, dt.date(2026, 1, 10))
    with pytest.raises(ValidationError):
        enrolment_close(
            actor=school_admin,
            school=school,
            enrolment=enrolment,
            on=dt.date(2026, 1, 11),
            status=EnrolmentStatus.LEFT,
        )


def test_a_move_to_another_class_keeps_both_enrolments(principal, school, secondary_class):
    other = class_create(school_year=secondary_class.school_year, name="8B", grade=8, levels=school.levels)
    enrolment = Enrolment.objects.filter(school_class=secondary_class).first()
    new = enrolment_move(
        actor=principal, school=school, enrolment=enrolment, to_class=other, on=dt.date(2026, 2, 1)
    )
    history = Enrolment.objects.filter(student=enrolment.student).order_by("enrolled_on")
    assert [(e.school_class.name, e.status) for e in history] == [("8A", "moved"), ("8B", "active")]
    assert new.school_class == other


def test_teachers_do_not_change_enrolments(subject_teacher, school, secondary_class):
    enrolment = Enrolment.objects.filter(school_class=secondary_class).first()
    with pytest.raises(PermissionDenied):
        enrolment_close(
            actor=subject_teacher,
            school=school,
            enrolment=enrolment,
            on=dt.date(2026, 1, 10),
            status=EnrolmentStatus.LEFT,
        )
    assert SchoolClass.objects.filter(pk=secondary_class.pk).exists()


# --- An approved class refuses every change, whoever calls (issue 9, finding 2) ----------------

APPROVED = "Lớp 8A đã được hiệu trưởng duyệt cuối năm: "


@pytest.fixture
def approved_8a(secondary_class):
    SchoolClass.objects.filter(pk=secondary_class.pk).update(closed_at=timezone.now())
    return SchoolClass.objects.get(pk=secondary_class.pk)


def _refused(call, reason: str) -> None:
    with translation.override("vi"), pytest.raises(ValidationError) as caught:
        call()
    assert [error.code for error in caught.value.error_list] == ["class_closed"]
    assert caught.value.messages == [APPROVED + reason]


STUDENTS = "không thể thêm, chuyển hay bớt học sinh của lớp."


def test_no_student_is_enrolled_in_an_approved_class(approved_8a):
    newcomer = student_make("CS900", "Kiều Văn Muộn", 1, dt.date(2012, 6, 1))
    _refused(
        lambda: student_enrol(student=newcomer, school_class=approved_8a, enrolled_on=dt.date(2026, 6, 1)),
        STUDENTS,
    )
    _refused(
        lambda: students_enrol(
            enrolments=[
                Enrolment(student=newcomer, school_class=approved_8a, enrolled_on=dt.date(2026, 6, 1))
            ]
        ),
        STUDENTS,
    )
    assert not Enrolment.objects.filter(student=newcomer).exists()


def test_no_student_leaves_or_moves_out_of_or_into_an_approved_class(school_admin, school, approved_8a):
    enrolment = Enrolment.objects.filter(school_class=approved_8a).first()
    _refused(
        lambda: enrolment_close(
            actor=school_admin, school=school, enrolment=enrolment, on=dt.date(2026, 6, 1), status="left"
        ),
        STUDENTS,
    )
    other = class_create(school_year=approved_8a.school_year, name="8B", grade=8, levels=school.levels)
    _refused(
        lambda: enrolment_move(
            actor=school_admin, school=school, enrolment=enrolment, to_class=other, on=dt.date(2026, 6, 1)
        ),
        STUDENTS,
    )
    pupil = student_make("CS901", "Tạ Thị Chuyển", 2, dt.date(2012, 7, 1))
    incoming = student_enrol(student=pupil, school_class=other, enrolled_on=dt.date(2026, 1, 5))
    _refused(
        lambda: enrolment_move(
            actor=school_admin,
            school=school,
            enrolment=incoming,
            to_class=approved_8a,
            on=dt.date(2026, 6, 1),
        ),
        STUDENTS,
    )
    assert Enrolment.objects.get(pk=enrolment.pk).status == "active"
    assert Enrolment.objects.get(pk=incoming.pk).status == "active"


def test_the_numbers_in_an_approved_class_do_not_change(approved_8a):
    enrolment = Enrolment.objects.filter(school_class=approved_8a).first()
    _refused(
        lambda: enrolment_number_set(enrolment=enrolment, number=40),
        "không thể thay đổi số thứ tự của học sinh trong lớp.",
    )


def test_an_approved_class_keeps_its_name_homeroom_teacher_and_teachers(colleague, approved_8a):
    _refused(
        lambda: class_update(school_class=approved_8a, homeroom_teacher=colleague),
        "không thể thay giáo viên chủ nhiệm.",
    )
    _refused(lambda: class_update(school_class=approved_8a, name="8Z"), "không thể đổi tên lớp.")
    _refused(
        lambda: teaching_assignment_set(
            school_class=approved_8a, subject=Subject.objects.get(code="toan"), teacher=colleague
        ),
        "không thể thay đổi phân công giảng dạy.",
    )
    approved_8a.refresh_from_db()
    assert (approved_8a.name, approved_8a.homeroom_teacher.username) == ("8A", "homeroom_teacher")


def test_an_open_class_is_renamed_and_given_another_homeroom_teacher(colleague, secondary_class):
    class_update(school_class=secondary_class, name="8Z", homeroom_teacher=colleague)
    secondary_class.refresh_from_db()
    assert (secondary_class.name, secondary_class.homeroom_teacher) == ("8Z", colleague)
