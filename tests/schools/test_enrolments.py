"""Transfers and class moves keep the history: enrolments are closed, never deleted."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from schools.choices import EnrolmentStatus
from schools.models import Enrolment, SchoolClass
from schools.services import class_create, enrolment_close, enrolment_move


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
