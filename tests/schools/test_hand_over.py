"""Handing a departing teacher's classes to another (issue 14): the school administrator or the
principal moves all of a visiting or contract teacher's classes of the current year, homeroom
classes and teaching assignments, to a current teacher of the school, in one audited step; what
was done before keeps the original teacher.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from portal.choices import AuditAction, Role
from portal.models import AuditEntry, RoleAssignment
from portal.permissions import forget_access
from schools.models import Enrolment, SchoolClass, Subject, TeachingAssignment
from schools.services import teacher_classes_hand_over
from transcripts.models import AssessmentChange
from transcripts.services import Cell, assessment_cell_save


def today() -> dt.date:
    return timezone.localdate()


def ends(user, school, last_day: dt.date) -> None:
    RoleAssignment.objects.filter(user=user, school=school, revoked_at__isnull=True).update(
        valid_until=last_day
    )
    forget_access(user)


def teachers_of(school_class) -> dict[str, str]:
    return dict(
        TeachingAssignment.objects.filter(school_class=school_class).values_list(
            "subject__code", "teacher__username"
        )
    )


def page_url(school) -> str:
    return reverse("schools:hand_over", kwargs={"school_code": school.code})


def test_the_principal_hands_an_ended_teachers_classes_to_a_colleague_in_one_step(
    principal, subject_teacher, colleague, school, primary_class, secondary_class
):
    ends(subject_teacher, school, today() - dt.timedelta(days=1))

    moved = teacher_classes_hand_over(
        actor=principal, school=school, from_teacher=subject_teacher, to_teacher=colleague
    )

    assert moved.homeroom_classes == []
    assert moved.assignments == ["5A: Ngoại ngữ 1", "8A: Toán"]
    assert teachers_of(primary_class) == {"ngoai_ngu_1": "colleague"}
    assert teachers_of(secondary_class) == {"toan": "colleague", "ngu_van": "colleague"}
    entry = AuditEntry.objects.get(action=AuditAction.TEACHER_CLASSES_HANDED_OVER, school=school)
    assert entry.actor == principal
    assert entry.changes == {
        "from": "subject_teacher",
        "to": "colleague",
        "homeroom_classes": [],
        "assignments": ["5A: Ngoại ngữ 1", "8A: Toán"],
    }


def test_scores_entered_before_keep_the_teacher_who_entered_them_and_the_new_one_takes_over(
    principal, subject_teacher, colleague, school, secondary_class
):
    enrolment = Enrolment.objects.filter(school_class=secondary_class).order_by("number").first()
    cell = Cell(
        enrolment_id=enrolment.pk, subject_id=Subject.objects.get(code="toan").pk, term=1, field="mid"
    )
    assessment_cell_save(
        actor=subject_teacher, school=school, school_class=secondary_class, cell=cell, raw="6"
    )
    ends(subject_teacher, school, today() - dt.timedelta(days=1))

    teacher_classes_hand_over(
        actor=principal, school=school, from_teacher=subject_teacher, to_teacher=colleague
    )
    forget_access(colleague)
    assessment_cell_save(actor=colleague, school=school, school_class=secondary_class, cell=cell, raw="7")

    history = list(
        AssessmentChange.objects.filter(enrolment=enrolment)
        .order_by("id")
        .values_list("actor__username", flat=True)
    )
    assert history[-2:] == ["subject_teacher", "colleague"]


def test_homeroom_classes_go_only_to_a_homeroom_teacher(
    school_admin, homeroom_teacher, colleague, school, primary_class, secondary_class
):
    ends(homeroom_teacher, school, today() + dt.timedelta(days=5))  # leaving at the end of the week
    with pytest.raises(ValidationError, match="không phải giáo viên chủ nhiệm"):
        teacher_classes_hand_over(
            actor=school_admin, school=school, from_teacher=homeroom_teacher, to_teacher=colleague
        )
    assert SchoolClass.objects.get(pk=primary_class.pk).homeroom_teacher == homeroom_teacher

    RoleAssignment.objects.create(user=colleague, role=Role.HOMEROOM_TEACHER, school=school)
    moved = teacher_classes_hand_over(
        actor=school_admin, school=school, from_teacher=homeroom_teacher, to_teacher=colleague
    )
    assert moved.homeroom_classes == ["5A", "8A"]
    assert set(SchoolClass.objects.values_list("homeroom_teacher__username", flat=True)) == {"colleague"}


def test_the_new_teacher_must_teach_in_the_school_now(
    principal, subject_teacher, colleague, teacher_of_another_school, school, secondary_class
):
    with pytest.raises(ValidationError, match="hiện không dạy ở trường này"):
        teacher_classes_hand_over(
            actor=principal, school=school, from_teacher=subject_teacher, to_teacher=teacher_of_another_school
        )
    ends(colleague, school, today() - dt.timedelta(days=1))
    with pytest.raises(ValidationError, match="hiện không dạy ở trường này"):
        teacher_classes_hand_over(
            actor=principal, school=school, from_teacher=subject_teacher, to_teacher=colleague
        )
    with pytest.raises(ValidationError, match="giáo viên khác"):
        teacher_classes_hand_over(
            actor=principal, school=school, from_teacher=subject_teacher, to_teacher=subject_teacher
        )
    assert teachers_of(secondary_class)["toan"] == "subject_teacher"


def test_only_whoever_manages_the_teachers_hands_classes_over(
    vice_principal, homeroom_teacher, subject_teacher, colleague, school, secondary_class
):
    for actor in (vice_principal, homeroom_teacher, subject_teacher):
        with pytest.raises(PermissionDenied):
            teacher_classes_hand_over(
                actor=actor, school=school, from_teacher=subject_teacher, to_teacher=colleague
            )
    assert teachers_of(secondary_class)["toan"] == "subject_teacher"


def test_an_approved_class_keeps_its_teachers_and_nothing_left_is_said_clearly(
    principal, subject_teacher, colleague, school, primary_class, secondary_class
):
    SchoolClass.objects.filter(pk__in=[primary_class.pk, secondary_class.pk]).update(closed_at=timezone.now())
    with pytest.raises(ValidationError, match="không còn lớp nào của năm học này"):
        teacher_classes_hand_over(
            actor=principal, school=school, from_teacher=subject_teacher, to_teacher=colleague
        )
    assert teachers_of(secondary_class)["toan"] == "subject_teacher"


def test_a_second_hand_over_finds_nothing_left(
    principal, subject_teacher, colleague, school, secondary_class
):
    teacher_classes_hand_over(
        actor=principal, school=school, from_teacher=subject_teacher, to_teacher=colleague
    )
    with pytest.raises(ValidationError, match="không còn lớp nào của năm học này"):
        teacher_classes_hand_over(
            actor=principal, school=school, from_teacher=subject_teacher, to_teacher=colleague
        )
    assert (
        AuditEntry.objects.filter(action=AuditAction.TEACHER_CLASSES_HANDED_OVER, school=school).count() == 1
    )


# --- The page -------------------------------------------------------------------------------------


def test_the_page_lists_teachers_whose_role_ended_or_ends_soon_with_their_classes(
    client_as, principal, subject_teacher, colleague, homeroom_teacher, school
):
    ends(subject_teacher, school, today() - dt.timedelta(days=3))
    ends(homeroom_teacher, school, today() + dt.timedelta(days=90))  # not soon: not listed
    response = client_as(principal).get(page_url(school), HTTP_ACCEPT_LANGUAGE="vi")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(r["user"].username, r["ended"]) for r in rows] == [("subject_teacher", True)]
    assert [(c["class"].name, c["subjects"]) for c in rows[0]["classes"]] == [
        ("5A", ["Ngoại ngữ 1"]),
        ("8A", ["Toán"]),
    ]
    assert {t.username for t in response.context["teachers"]} == {"colleague", "homeroom_teacher"}
    assert today().strftime("%d/%m/%Y") != "" and (today() - dt.timedelta(days=3)).strftime("%d/%m/%Y") in (
        response.content.decode()
    )


def test_the_form_hands_the_classes_over_and_says_so(
    client_as, principal, subject_teacher, colleague, school, secondary_class
):
    ends(subject_teacher, school, today() - dt.timedelta(days=3))
    client = client_as(principal)
    response = client.post(
        page_url(school),
        {"from_teacher": subject_teacher.pk, "to_teacher": colleague.pk},
        HTTP_ACCEPT_LANGUAGE="vi",
        follow=True,
    )
    assert response.status_code == 200
    assert "Đã bàn giao 2 lớp hoặc môn của Đỗ Bộ Môn cho Mai Đồng Nghiệp." in response.content.decode()
    with school:
        assert teachers_of(secondary_class)["toan"] == "colleague"


def test_a_refusal_is_said_on_the_page(client_as, school_admin, homeroom_teacher, colleague, school):
    ends(homeroom_teacher, school, today() + dt.timedelta(days=2))
    response = client_as(school_admin).post(
        page_url(school),
        {"from_teacher": homeroom_teacher.pk, "to_teacher": colleague.pk},
        HTTP_ACCEPT_LANGUAGE="vi",
        follow=True,
    )
    assert response.status_code == 200
    assert "không phải giáo viên chủ nhiệm" in response.content.decode()


def test_the_school_home_offers_the_page_to_its_managers_only(client_as, principal, subject_teacher, school):
    home = reverse("schools:home", kwargs={"school_code": school.code})
    assert page_url(school) in client_as(principal).get(home).content.decode()
    assert page_url(school) not in client_as(subject_teacher).get(home).content.decode()


def test_the_school_home_shows_each_staff_members_last_day(client_as, principal, subject_teacher, school):
    ends(subject_teacher, school, today() + dt.timedelta(days=12))
    home = reverse("schools:home", kwargs={"school_code": school.code})
    response = client_as(principal).get(home)
    staff = {p["user"].username: p["until"] for p in response.context["staff"]}
    assert staff["subject_teacher"] == today() + dt.timedelta(days=12)
    assert staff["principal"] is None
    assert (today() + dt.timedelta(days=12)).strftime("%d/%m/%Y") in response.content.decode()


def test_the_page_reads_the_same_number_of_queries_however_many_teachers_leave(
    client_as, principal, subject_teacher, colleague, homeroom_teacher, school
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_as(principal)
    ends(subject_teacher, school, today() - dt.timedelta(days=1))
    client.get(page_url(school))  # warm: sessions, the school's route
    with CaptureQueriesContext(connection) as one:
        assert client.get(page_url(school)).status_code == 200
    ends(colleague, school, today() + dt.timedelta(days=3))
    ends(homeroom_teacher, school, today() + dt.timedelta(days=4))
    with CaptureQueriesContext(connection) as three:
        response = client.get(page_url(school))
    assert len(response.context["rows"]) == 3
    # Compared without SET search_path: one precedes the second request only (ends() left the
    # connection on another schema; the warm request had left it on the school's).
    assert len(_real(three)) == len(_real(one))


def _real(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SET search_path")]
