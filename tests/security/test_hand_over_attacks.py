"""Attacks on the hand-over of a departing teacher's classes (issue 14): another school's teacher
as the new one, a teacher handing over their own classes, another school's ids, tampered forms,
a lower role, a school the user does not belong to. Out of scope: 404; visible but not allowed:
403; never a 500, and nothing moved.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from portal.models import AuditEntry, RoleAssignment
from portal.permissions import forget_access
from schools.models import TeachingAssignment
from schools.services import teacher_classes_hand_over


def page_url(school) -> str:
    return reverse("schools:hand_over", kwargs={"school_code": school.code})


@pytest.fixture
def departed(subject_teacher, school):
    """The school's subject teacher, whose contract ended last week."""
    RoleAssignment.objects.filter(user=subject_teacher, school=school).update(
        valid_until=timezone.localdate() - dt.timedelta(days=7)
    )
    forget_access(subject_teacher)
    return subject_teacher


def nothing_moved(school) -> bool:
    with school:
        moved = TeachingAssignment.objects.exclude(
            teacher__username__in=["subject_teacher", "colleague"]
        ).exists()
        kept = TeachingAssignment.objects.filter(teacher__username="subject_teacher").count() == 2
    return (
        not moved
        and kept
        and not AuditEntry.objects.filter(action="teacher_classes_handed_over", school=school).exists()
    )


def test_handing_over_to_another_schools_teacher_finds_nothing(
    client_as, principal, departed, teacher_of_another_school, school
):
    response = client_as(principal).post(
        page_url(school), {"from_teacher": departed.pk, "to_teacher": teacher_of_another_school.pk}
    )
    assert response.status_code == 404
    assert nothing_moved(school)


def test_handing_over_another_schools_teacher_finds_nothing(
    client_as, principal, departed, teacher_of_another_school, colleague, school
):
    response = client_as(principal).post(
        page_url(school), {"from_teacher": teacher_of_another_school.pk, "to_teacher": colleague.pk}
    )
    assert response.status_code == 404
    assert nothing_moved(school)


def test_a_current_teacher_not_listed_as_leaving_cannot_be_handed_over_through_the_page(
    client_as, principal, subject_teacher, colleague, school
):
    response = client_as(principal).post(
        page_url(school), {"from_teacher": subject_teacher.pk, "to_teacher": colleague.pk}
    )
    assert response.status_code == 404
    assert nothing_moved(school)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"from_teacher": "abc", "to_teacher": "1"},
        {"from_teacher": "-1", "to_teacher": "1"},
        {"from_teacher": "9" * 40, "to_teacher": "9" * 40},
        {"from_teacher": "1 OR 1=1", "to_teacher": "٧"},
        {"from_teacher": "", "to_teacher": ""},
    ],
)
def test_a_tampered_form_finds_nothing(client_as, principal, departed, school, data):
    response = client_as(principal).post(page_url(school), data)
    assert response.status_code == 404
    assert nothing_moved(school)


@pytest.mark.parametrize("name", ["subject_teacher", "homeroom_teacher", "colleague", "vice_principal"])
def test_a_teacher_or_a_vice_principal_may_see_the_school_but_not_the_hand_over(
    client_as, persona, departed, colleague, school, name
):
    client = client_as(persona(name))
    if name == "subject_teacher":  # the departed one has no school any more
        assert client.get(page_url(school)).status_code == 404
        return
    assert client.get(page_url(school)).status_code == 403
    response = client.post(page_url(school), {"from_teacher": departed.pk, "to_teacher": colleague.pk})
    assert response.status_code == 403
    assert nothing_moved(school)


def test_a_teacher_cannot_hand_over_their_own_classes(subject_teacher, colleague, school, secondary_class):
    with pytest.raises(PermissionDenied):
        teacher_classes_hand_over(
            actor=subject_teacher, school=school, from_teacher=subject_teacher, to_teacher=colleague
        )
    assert TeachingAssignment.objects.filter(teacher=subject_teacher).count() == 2


def test_another_schools_administrator_finds_no_such_page(
    client_as, other_school_admin, departed, colleague, school
):
    client = client_as(other_school_admin)
    assert client.get(page_url(school)).status_code == 404
    assert (
        client.post(page_url(school), {"from_teacher": departed.pk, "to_teacher": colleague.pk}).status_code
        == 404
    )
    assert nothing_moved(school)


def test_another_schools_administrator_cannot_hand_over_here_through_the_service(
    other_school_admin, departed, colleague, school, secondary_class
):
    with pytest.raises(PermissionDenied):
        teacher_classes_hand_over(
            actor=other_school_admin, school=school, from_teacher=departed, to_teacher=colleague
        )


def test_a_double_submit_moves_once_and_says_why_the_second_time(
    client_as, principal, departed, colleague, school
):
    client = client_as(principal)
    data = {"from_teacher": departed.pk, "to_teacher": colleague.pk}
    assert client.post(page_url(school), data).status_code == 302
    second = client.post(page_url(school), data, follow=True, HTTP_ACCEPT_LANGUAGE="vi")
    assert second.status_code == 200
    assert AuditEntry.objects.filter(action="teacher_classes_handed_over", school=school).count() == 1
