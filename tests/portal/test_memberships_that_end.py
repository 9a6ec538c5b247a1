# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""Memberships that end (issue 14): a visiting or contract teacher's role in a school has an end
date; the day after it, every right it gave is gone (entering scores, the homeroom's cells,
confirming the class's records), and the teacher sees one list of their classes across the
schools where they still work.

The clock is not moved: end dates are set relative to timezone.localdate().
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.choices import AuditAction, Role
from portal.models import AuditEntry, RoleAssignment
from portal.permissions import access_for, forget_access
from portal.selectors import membership_end, memberships_until, school_memberships_ending, workplaces_for
from portal.services import role_assignments_expire
from schools.models import Enrolment, Subject
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.permissions import can_edit_homeroom, can_edit_subject
from transcripts.records.services import year_record_confirm, year_records_confirm_all
from transcripts.services import Cell, assessment_cell_save


def today() -> dt.date:
    return timezone.localdate()


def ends(user, school, last_day: dt.date | None) -> None:
    """The user's roles in the school end on `last_day` (the schema is left as it was)."""
    RoleAssignment.objects.filter(user=user, school=school, revoked_at__isnull=True).update(
        valid_until=last_day
    )
    forget_access(user)


def save_score(actor, school, school_class, subject_code: str, raw: str = "7"):
    enrolment = Enrolment.objects.filter(school_class=school_class).order_by("number").first()
    cell = Cell(
        enrolment_id=enrolment.pk, subject_id=Subject.objects.get(code=subject_code).pk, term=1, field="mid"
    )
    return assessment_cell_save(actor=actor, school=school, school_class=school_class, cell=cell, raw=raw)


# --- Rights end at the end date -------------------------------------------------------------------


def test_a_role_counts_through_its_last_day_and_not_the_day_after(subject_teacher, school):
    ends(subject_teacher, school, today())
    assert Role.SUBJECT_TEACHER in access_for(subject_teacher).roles_in_school(school.pk)
    ends(subject_teacher, school, today() - dt.timedelta(days=1))
    assert access_for(subject_teacher).roles_in_school(school.pk) == set()


def test_a_subject_teacher_enters_scores_until_the_end_date_and_not_after(
    subject_teacher, school, secondary_class
):
    ends(subject_teacher, school, today())
    assert save_score(subject_teacher, school, secondary_class, "toan", "7").changed

    ends(subject_teacher, school, today() - dt.timedelta(days=1))
    assert not can_edit_subject(subject_teacher, school, secondary_class, subject_teacher.pk)
    with pytest.raises(PermissionDenied):
        save_score(subject_teacher, school, secondary_class, "toan", "8")


def test_a_homeroom_teacher_edits_the_homeroom_cells_until_the_end_date_and_not_after(
    homeroom_teacher, school, secondary_class
):
    enrolment = Enrolment.objects.filter(school_class=secondary_class).order_by("number").first()
    cell = Cell(enrolment_id=enrolment.pk, field="absences")
    ends(homeroom_teacher, school, today())
    assert can_edit_homeroom(homeroom_teacher, school, secondary_class)
    assessment_cell_save(
        actor=homeroom_teacher, school=school, school_class=secondary_class, cell=cell, raw="2"
    )

    ends(homeroom_teacher, school, today() - dt.timedelta(days=1))
    assert not can_edit_homeroom(homeroom_teacher, school, secondary_class)
    with pytest.raises(PermissionDenied):
        assessment_cell_save(
            actor=homeroom_teacher, school=school, school_class=secondary_class, cell=cell, raw="3"
        )


def test_a_homeroom_teacher_whose_membership_ended_cannot_confirm_the_class(
    homeroom_teacher, school, records, approved_class
):
    school_class, _ = approved_class
    ends(homeroom_teacher, school, today() - dt.timedelta(days=1))
    with pytest.raises(PermissionDenied):
        year_record_confirm(actor=homeroom_teacher, school=school, record=records[0])
    with pytest.raises(PermissionDenied):
        year_records_confirm_all(actor=homeroom_teacher, school=school, school_class=school_class)

    ends(homeroom_teacher, school, today())
    assert year_records_confirm_all(actor=homeroom_teacher, school=school, school_class=school_class) == 2


def test_the_school_pages_answer_404_once_every_role_there_has_ended(client_as, subject_teacher, school):
    ends(subject_teacher, school, today() - dt.timedelta(days=1))
    client = client_as(subject_teacher)
    assert client.get(reverse("schools:home", kwargs={"school_code": school.code})).status_code == 404


def test_an_ended_role_is_recorded_once_as_expired(subject_teacher, school):
    ends(subject_teacher, school, today() - dt.timedelta(days=1))
    # (Other tests' committed data may expire too: only this assignment is looked at.)
    assert role_assignments_expire(today=today()) >= 1
    role_assignments_expire(today=today())
    assignment = RoleAssignment.objects.get(user=subject_teacher, school=school)
    assert assignment.revoked_at is not None
    entry = AuditEntry.objects.get(action=AuditAction.ROLE_EXPIRED, object_id=str(assignment.pk))
    assert entry.changes["old"]["user"] == subject_teacher.username
    # Said as a person reads a day (portal.formats), not as ISO.
    assert (today() - dt.timedelta(days=1)).strftime("%d/%m/%Y") in entry.summary


# --- When a membership ends -----------------------------------------------------------------------


def test_membership_end_is_the_last_end_date_and_none_when_one_role_has_none(
    subject_teacher, school, principal
):
    RoleAssignment.objects.create(
        user=subject_teacher,
        role=Role.HOMEROOM_TEACHER,
        school=school,
        valid_until=today() + dt.timedelta(days=9),
    )
    ends(subject_teacher, school, today() + dt.timedelta(days=3))
    RoleAssignment.objects.filter(user=subject_teacher, role=Role.HOMEROOM_TEACHER).update(
        valid_until=today() + dt.timedelta(days=9)
    )
    assert membership_end(user=subject_teacher, school=school) == today() + dt.timedelta(days=9)
    assert membership_end(
        user=subject_teacher, school=school, roles={Role.SUBJECT_TEACHER}
    ) == today() + dt.timedelta(days=3)
    assert membership_end(user=principal, school=school) is None
    assert memberships_until(user=subject_teacher, roles={Role.SUBJECT_TEACHER}) == [
        (school, today() + dt.timedelta(days=3))
    ]
    assert memberships_until(user=principal, roles={Role.PRINCIPAL}) == []


def test_the_school_lists_teachers_whose_role_ended_or_ends_within_30_days(
    subject_teacher, colleague, homeroom_teacher, school
):
    ends(subject_teacher, school, today() - dt.timedelta(days=2))
    ends(colleague, school, today() + dt.timedelta(days=20))
    ends(homeroom_teacher, school, today() + dt.timedelta(days=45))
    listed = school_memberships_ending(school=school, today=today())
    assert [(e["user"].username, e["until"], e["ended"]) for e in listed] == [
        ("subject_teacher", today() - dt.timedelta(days=2), True),
        ("colleague", today() + dt.timedelta(days=20), False),
    ]


def test_a_revoked_role_ends_the_day_before_its_revocation_and_a_new_open_grant_hides_it(
    subject_teacher, school, principal
):
    assignment = RoleAssignment.objects.get(user=subject_teacher, school=school)
    RoleAssignment.objects.filter(pk=assignment.pk).update(revoked_at=timezone.now(), revoked_by=principal)
    listed = school_memberships_ending(school=school, today=today())
    assert [(e["user"].username, e["until"]) for e in listed] == [
        ("subject_teacher", today() - dt.timedelta(days=1))
    ]
    RoleAssignment.objects.create(user=subject_teacher, role=Role.SUBJECT_TEACHER, school=school)
    assert school_memberships_ending(school=school, today=today()) == []


# --- One list of classes across schools -----------------------------------------------------------


@pytest.fixture
def visiting_teacher(subject_teacher, other_school, school):
    """The school's subject teacher also teaches maths in a class of the other school, until the
    end of the semester there."""
    from schools.services import class_create, school_year_open, teaching_assignment_set

    RoleAssignment.objects.create(
        user=subject_teacher,
        role=Role.SUBJECT_TEACHER,
        school=other_school,
        valid_until=today() + dt.timedelta(days=40),
    )
    forget_access(subject_teacher)
    with other_school:
        year = school_year_open(
            code="2025-2026",
            starts_on=dt.date(2025, 9, 5),
            ends_on=dt.date(2026, 5, 31),
            levels=other_school.levels,
        )
        school_class = class_create(school_year=year, name="9B", grade=9, levels=other_school.levels)
        teaching_assignment_set(
            school_class=school_class, subject=Subject.objects.get(code="toan"), teacher=subject_teacher
        )
    connection.set_schema_to_public()
    return subject_teacher


def test_a_teacher_in_two_schools_sees_one_list_of_their_classes_with_links_into_each_grade_book(
    client_as, visiting_teacher, school, other_school
):
    with other_school:
        from schools.models import SchoolClass

        other_class = SchoolClass.objects.get(name="9B")
    with school:
        own = {c.name: c.pk for c in SchoolClass.objects.all()}
    page = client_as(visiting_teacher).get("/", HTTP_ACCEPT_LANGUAGE="vi")
    assert page.status_code == 200
    classes = page.context["classes"]
    assert sorted(
        (c["school"].code, c["class_name"], [n for _code, n in c["subjects"]]) for c in classes
    ) == sorted(
        [
            (school.code, "5A", ["Ngoại ngữ 1"]),
            (school.code, "8A", ["Toán"]),
            (other_school.code, "9B", ["Toán"]),
        ]
    )
    text = page.content.decode()
    assert f"/truong/{other_school.code}/so-diem/{other_class.pk}/toan/" in text
    assert f"/truong/{school.code}/so-diem/{own['8A']}/toan/" in text
    assert f"/truong/{school.code}/so-diem/{own['5A']}/ngoai_ngu_1/" in text
    # The other school's membership ends: its date shows beside it; the open-ended one shows none.
    until = (today() + dt.timedelta(days=40)).strftime("%d/%m/%Y")
    assert f"đến hết ngày {until}" in text
    assert [c["until"] for c in classes if c["school"].pk == school.pk] == [None, None]


def test_a_homeroom_class_links_to_the_homeroom_book(client_as, homeroom_teacher, school):
    from schools.models import SchoolClass

    with school:
        ids = sorted(
            SchoolClass.objects.filter(homeroom_teacher=homeroom_teacher).values_list("pk", flat=True)
        )
    page = client_as(homeroom_teacher).get("/")
    assert [c["homeroom"] for c in page.context["classes"]] == [True, True]
    for pk in ids:
        assert f"/truong/{school.code}/so-diem/lop/{pk}/" in page.content.decode()


def test_the_list_reads_each_school_in_one_query(client_as, visiting_teacher, school, other_school):
    client = client_as(visiting_teacher)
    with CaptureQueriesContext(connection) as two_schools:
        client.get("/")
    reads = [q["sql"] for q in two_schools.captured_queries if '"schools_schoolclass"' in q["sql"]]
    assert len(reads) == 2


def test_a_school_whose_role_ended_drops_out_of_the_list(client_as, visiting_teacher, school, other_school):
    RoleAssignment.objects.filter(user=visiting_teacher, school=other_school).update(
        valid_until=today() - dt.timedelta(days=1)
    )
    page = client_as(visiting_teacher).get("/")
    assert {c["school"].code for c in page.context["classes"]} == {school.code}
    assert [w["place"] for w in workplaces_for(visiting_teacher)] == [school]
