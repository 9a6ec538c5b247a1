"""Closing a class's year: the principal's approval in June, the August re-assessment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils.translation import gettext, override

from portal.models import AuditEntry
from schools.models import Enrolment, SchoolClass
from tests.transcripts.test_homeroom import fill_secondary
from transcripts.models import StudentYear, SubjectTermScores
from transcripts.yearclose import class_summer_close, class_year_close


def homeroom_url(school, school_class, suffix=""):
    return f"/truong/{school.code}/so-diem/lop/{school_class.pk}/{suffix}"


@pytest.fixture
def complete_class(school, secondary_class):
    """8A with every score in; the first student fails Toán (2.0), the second has conduct CĐ."""
    connection.set_tenant(school)
    fill_secondary(secondary_class, "7.0")
    enrolments = list(Enrolment.objects.filter(school_class=secondary_class).order_by("number"))
    toan = SubjectTermScores.objects.filter(enrolment=enrolments[0], subject__code="toan")
    toan.update(
        regular_1=Decimal(2),
        regular_2=Decimal(2),
        regular_3=Decimal(2),
        regular_4=Decimal(2),
        mid=Decimal(2),
        end=Decimal(2),
    )
    for i, enrolment in enumerate(enrolments):
        conduct = "CĐ" if i == 1 else "K"
        StudentYear.objects.create(
            enrolment=enrolment, conduct_term1=conduct, conduct_term2=conduct, conduct_year=conduct
        )
    return secondary_class, enrolments


def test_the_principal_approves_the_year_and_the_book_closes(
    client_as, principal, subject_teacher, school, complete_class
):
    school_class, enrolments = complete_class
    response = client_as(principal).post(homeroom_url(school, school_class, "phe-duyet/"))
    assert response.status_code == 302

    connection.set_tenant(school)
    school_class = SchoolClass.objects.get(pk=school_class.pk)
    assert school_class.closed_by_id == principal.pk
    outcomes = [StudentYear.objects.get(enrolment=e).results["outcome"] for e in enrolments]
    assert outcomes[:2] == ["reassessment", "summer_training"]
    assert set(outcomes[2:]) == {"promoted"}
    # A closed book refuses changes, even from the subject's teacher.
    refused = client_as(subject_teacher).post(
        f"/truong/{school.code}/so-diem/{school_class.pk}/toan/o/",
        {"enrolment": enrolments[2].pk, "field": "mid", "value": "9", "term": "1"},
    )
    assert refused.status_code == 400 and "đã được hiệu trưởng phê duyệt" in refused.json()["error"]
    connection.set_schema_to_public()
    assert AuditEntry.objects.filter(action="class_year_approved", school=school, actor=principal).exists()


def test_a_year_with_missing_data_cannot_be_approved(principal, school, secondary_class, in_school):
    with override("en"), pytest.raises(ValidationError, match=r"students still miss data"):
        class_year_close(actor=principal, school=school, school_class=secondary_class)
    assert SchoolClass.objects.get(pk=secondary_class.pk).closed_at is None


def test_only_school_leaders_approve_the_year(homeroom_teacher, school, complete_class):
    school_class, _ = complete_class
    with (
        override("en"),
        pytest.raises(PermissionDenied, match=r"Only the principal or a vice-principal approves the year"),
    ):
        class_year_close(actor=homeroom_teacher, school=school, school_class=school_class)


def test_august_re_assessment_and_re_training_decide_promotion(
    client_as, principal, homeroom_teacher, school, complete_class
):
    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    teacher = client_as(homeroom_teacher)
    url = homeroom_url(school, school_class, "he/o/")

    # Toán is the only subject re-assessed for the first student; another subject is refused.
    refused = teacher.post(url, {"enrolment": enrolments[0].pk, "field": "retake:ngu_van", "value": "6"})
    with override("vi"):
        assert (refused.status_code, refused.json()["error"]) == (
            400,
            gettext("This subject is not re-assessed for this student."),
        )
    assert (
        teacher.post(url, {"enrolment": enrolments[0].pk, "field": "retake:toan", "value": "6,5"}).status_code
        == 200
    )
    # Re-training result for the second; a promoted student is not re-assessed at all.
    assert (
        teacher.post(
            url, {"enrolment": enrolments[1].pk, "field": "conduct_after_training", "value": "Đ"}
        ).status_code
        == 200
    )
    promoted = teacher.post(
        url, {"enrolment": enrolments[2].pk, "field": "conduct_after_training", "value": "T"}
    )
    with override("vi"):
        assert (promoted.status_code, promoted.json()["error"]) == (
            400,
            gettext("This student is not re-assessed this summer."),
        )

    page = teacher.get(homeroom_url(school, school_class))
    assert len(page.context["summer"]) == 2

    assert client_as(principal).post(homeroom_url(school, school_class, "dong-so-he/")).status_code == 302
    connection.set_tenant(school)
    after = [StudentYear.objects.get(enrolment=e).results["after_summer"] for e in enrolments[:2]]
    assert after[0]["outcome"] == "promoted" and after[0]["retaken"] == ["toan"]
    assert after[1] == {"learning_year": "K", "conduct_year": "Đ", "outcome": "promoted", "retaken": []}
    # The August close happens once.
    with override("en"), pytest.raises(ValidationError, match=r"The re-assessment can be closed once"):
        class_summer_close(
            actor=principal, school=school, school_class=SchoolClass.objects.get(pk=school_class.pk)
        )


def test_a_failed_re_assessment_means_repeating(principal, homeroom_teacher, school, complete_class):
    from transcripts.yearclose import summer_cell_save

    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    school_class = SchoolClass.objects.get(pk=school_class.pk)
    summer_cell_save(
        actor=homeroom_teacher,
        school=school,
        school_class=school_class,
        enrolment_id=enrolments[0].pk,
        field="retake:toan",
        raw="3",
    )
    class_summer_close(actor=principal, school=school, school_class=school_class)
    assert StudentYear.objects.get(enrolment=enrolments[0]).results["after_summer"]["outcome"] == "repeat"
