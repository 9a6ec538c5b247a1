"""The grade book's and the records' pages go back by URL name, and their templates compare with
the vocabularies passed in their context (no literal left to drift from the choices)."""

from __future__ import annotations

from django.db import connection

from schools.models import Term
from tests.transcripts import test_year_close, test_year_records
from tests.transcripts.test_homeroom import homeroom_url
from tests.transcripts.test_records_pages import class_url, record_url

complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records


def test_computing_the_results_goes_back_to_the_homeroom_page(
    client_as, homeroom_teacher, school, secondary_class
):
    response = client_as(homeroom_teacher).post(homeroom_url(school, secondary_class, "ket-qua/"))
    assert response.status_code == 302
    assert response["Location"] == homeroom_url(school, secondary_class)


def test_approving_the_year_goes_back_to_the_homeroom_page(client_as, principal, school, secondary_class):
    response = client_as(principal).post(homeroom_url(school, secondary_class, "phe-duyet/"))
    assert response.status_code == 302
    assert response["Location"] == homeroom_url(school, secondary_class)


def test_locking_a_term_goes_back_to_the_grade_book_index(client_as, principal, school, secondary_class):
    connection.set_tenant(school)
    term = Term.objects.get(school_year=secondary_class.school_year, number=1)
    response = client_as(principal).post(
        f"/truong/{school.code}/so-diem/hoc-ki/{term.pk}/khoa/", {"locked": "1"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/truong/{school.code}/so-diem/"


def test_a_scored_subjects_grade_book_shows_the_term_average_column(
    client_as, principal, school, secondary_class
):
    response = client_as(principal).get(f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/")
    assert response.status_code == 200
    assert '<th class="avg">' in response.content.decode()


def test_the_records_page_offers_the_homeroom_teacher_to_confirm_a_data_complete_record(
    client_as, homeroom_teacher, school, records
):
    school_class = records[0].enrolment.school_class
    response = client_as(homeroom_teacher).get(class_url(school, school_class))
    assert response.status_code == 200
    content = response.content.decode()
    for record in records:
        assert f'action="{record_url(school, record, "xac-nhan/")}"' in content


def test_the_august_table_shows_each_student_what_they_retake_from_the_typed_results(
    client_as, principal, homeroom_teacher, school, complete_class
):
    from transcripts.rules.tt22 import Outcome
    from transcripts.yearclose import class_year_close

    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    page = client_as(homeroom_teacher).get(homeroom_url(school, school_class), HTTP_ACCEPT_LANGUAGE="vi")
    rows = {row.year.enrolment_id: row for row in page.context["summer"]}
    reassessed, retrained = rows[enrolments[0].pk], rows[enrolments[1].pk]
    assert (reassessed.outcome, reassessed.retrained) == (Outcome.REASSESSMENT, False)
    assert [(s["code"], s["year"]) for s in reassessed.subjects] == [("toan", "2,0")]
    assert (retrained.outcome, retrained.retrained, retrained.subjects) == (Outcome.SUMMER_TRAINING, True, [])
    content = page.content.decode()
    assert content.count('data-field="conduct_after_training"') == 1
    assert 'data-field="retake:toan"' in content
    assert "Kiểm tra lại" in content and "Rèn luyện trong hè" in content
