"""The homeroom view: conduct, absences and qualities, and the year's results computed by the rules."""

from __future__ import annotations

from decimal import Decimal

from django.db import connection

from schools.choices import SubjectKind
from schools.models import CurriculumEntry, Enrolment
from transcripts.models import PrimarySubjectAssessment, QualityAssessment, StudentYear, SubjectTermScores
from transcripts.results import COMPETENCY_CODES, QUALITY_CODES, class_results


def homeroom_url(school, school_class, suffix=""):
    return f"/truong/{school.code}/so-diem/lop/{school_class.pk}/{suffix}"


def fill_secondary(school_class, score: str = "8.5"):
    """Every subject of every student complete, all at the same score / Đ."""
    entries = CurriculumEntry.objects.filter(
        school_year_id=school_class.school_year_id, grade=school_class.grade
    )
    rows = []
    for enrolment in Enrolment.objects.filter(school_class=school_class):
        for entry in entries:
            for term in (1, 2):
                if entry.kind == SubjectKind.SCORED:
                    regular = {f"regular_{i}": Decimal(score) for i in range(1, entry.regular_count + 1)}
                    rows.append(
                        SubjectTermScores(
                            enrolment=enrolment,
                            subject_id=entry.subject_id,
                            term=term,
                            mid=Decimal(score),
                            end=Decimal(score),
                            **regular,
                        )
                    )
                else:
                    rows.append(
                        SubjectTermScores(
                            enrolment=enrolment, subject_id=entry.subject_id, term=term, level="Đ"
                        )
                    )
    SubjectTermScores.objects.bulk_create(rows)


def test_the_homeroom_teacher_sets_conduct_and_the_results_follow_the_rules(
    client_as, homeroom_teacher, school, secondary_class
):
    fill_secondary(secondary_class)
    enrolment = Enrolment.objects.filter(school_class=secondary_class).order_by("number").first()
    client = client_as(homeroom_teacher)
    url = homeroom_url(school, secondary_class, "o/")
    for field, value in [
        ("conduct_term1", "T"),
        ("conduct_term2", "t"),
        ("conduct_year", "T"),
        ("absences", "3"),
    ]:
        response = client.post(url, {"enrolment": enrolment.pk, "field": field, "value": value})
        assert response.status_code == 200, response.content

    connection.set_tenant(school)
    outcome = next(o for o in class_results(secondary_class) if o.enrolment.pk == enrolment.pk)
    assert outcome.missing == []
    # Every scored subject 8.5 (≥ 8.0, more than six of them), every comment subject Đ, conduct T.
    assert outcome.result["learning"]["year"] == "T"
    assert outcome.result["title"] == "gioi"
    assert outcome.result["outcome"] == "promoted"
    assert outcome.result["subjects"]["toan"]["year"] == "8.5"


def test_a_student_without_conduct_is_reported_missing_and_not_computed(school, secondary_class, in_school):
    fill_secondary(secondary_class)
    outcomes = class_results(secondary_class)
    assert all(o.result is None for o in outcomes)
    assert all("rèn luyện" in " ".join(o.missing) or "conduct" in " ".join(o.missing) for o in outcomes)


def test_results_are_stored_with_their_rule_set(client_as, homeroom_teacher, school, secondary_class):
    connection.set_tenant(school)
    fill_secondary(secondary_class, "6.0")
    for enrolment in Enrolment.objects.filter(school_class=secondary_class):
        StudentYear.objects.create(
            enrolment=enrolment, conduct_term1="K", conduct_term2="K", conduct_year="K", absences=50
        )

    response = client_as(homeroom_teacher).post(homeroom_url(school, secondary_class, "ket-qua/"))

    assert response.status_code == 302
    connection.set_tenant(school)
    year = StudentYear.objects.filter(enrolment__school_class=secondary_class).first()
    assert year.ruleset == "tt22" and year.computed_at is not None
    assert year.results["outcome"] == "repeat"  # more than 45 absences
    assert year.results["learning"]["year"] == "Đ"


def test_only_the_homeroom_teacher_enters_conduct(
    client_as, subject_teacher, principal, school, secondary_class
):
    enrolment = Enrolment.objects.filter(school_class=secondary_class).first()
    for user in (subject_teacher, principal):
        response = client_as(user).post(
            homeroom_url(school, secondary_class, "o/"),
            {"enrolment": enrolment.pk, "field": "conduct_year", "value": "T"},
        )
        assert response.status_code == 403


def test_primary_qualities_and_the_tt27_result(client_as, homeroom_teacher, school, primary_class):
    connection.set_tenant(school)
    enrolment = Enrolment.objects.filter(school_class=primary_class).order_by("number").first()
    entries = CurriculumEntry.objects.filter(
        school_year_id=primary_class.school_year_id, grade=primary_class.grade
    )
    PrimarySubjectAssessment.objects.bulk_create(
        PrimarySubjectAssessment(
            enrolment=enrolment,
            subject_id=e.subject_id,
            period="end2",
            level="T",
            test_score=9 if e.has_test else None,
        )
        for e in entries
    )
    QualityAssessment.objects.bulk_create(
        QualityAssessment(enrolment=enrolment, code=code, period="end2", level="T")
        for code in QUALITY_CODES + COMPETENCY_CODES[1:]
    )
    client = client_as(homeroom_teacher)
    response = client.post(
        homeroom_url(school, primary_class, "o/"),
        {
            "enrolment": enrolment.pk,
            "field": f"quality:{COMPETENCY_CODES[0]}:level",
            "value": "t",
            "period": "end2",
        },
    )
    assert response.status_code == 200 and response.json()["value"] == "T"

    connection.set_tenant(school)
    outcome = next(o for o in class_results(primary_class) if o.enrolment.pk == enrolment.pk)
    assert outcome.result == {"result": "HTXS", "completed": True}

    page = client.get(homeroom_url(school, primary_class))
    assert page.status_code == 200
    assert "HTXS" in page.content.decode()


def test_the_homeroom_page_permission_matrix(client_as, persona, school, secondary_class):
    expected = {
        "homeroom_teacher": 200,
        "principal": 200,
        "department_officer": 200,
        "colleague": 403,
        "teacher_of_another_school": 404,
    }
    for name, status in expected.items():
        assert client_as(persona(name)).get(homeroom_url(school, secondary_class)).status_code == status, name


def test_the_homeroom_teacher_writes_the_years_comment_and_award_proposal(
    client_as, homeroom_teacher, school, primary_class
):
    enrolment = Enrolment.objects.filter(school_class=primary_class).first()
    client = client_as(homeroom_teacher)
    for field, value in [
        ("homeroom_comment", "Em chăm ngoan, học tốt."),
        ("award_proposal", "Học sinh Xuất sắc"),
    ]:
        response = client.post(
            homeroom_url(school, primary_class, "o/"),
            {"enrolment": enrolment.pk, "field": field, "value": value},
        )
        assert response.status_code == 200
    page = client.get(homeroom_url(school, primary_class)).content.decode()
    assert "Em chăm ngoan, học tốt." in page and "Học sinh Xuất sắc" in page
