"""The grade book's saves answer a refusal as a refusal: a 4xx with a message, in JSON.

The grade book's script retries what was not answered (network, 5xx) and shows a refusal in the
cell without sending it again (static/js/gradebook.js). So every refusal of a cell save must be
a 4xx carrying `error`, never an HTML page (which the script cannot read) nor a 500 (which it
would retry forever as if offline). The browser side is tested in tests/e2e.
"""

from __future__ import annotations

import pytest
from django.db import connection

from schools.models import Enrolment
from transcripts.models import AssessmentChange

MALFORMED = "Học sinh, học kỳ hoặc kỳ đánh giá của ô này không hợp lệ: hãy tải lại trang."
NOT_FOUND = "Không tìm thấy lớp, môn học hoặc học sinh của ô này: hãy tải lại trang."


def _enrolment(school_class) -> Enrolment:
    return Enrolment.objects.filter(school_class=school_class).order_by("number").first()


def _changes(school) -> int:
    """Cell changes written so far (the browser tests commit theirs to the same database)."""
    connection.set_tenant(school)
    count = AssessmentChange.objects.count()
    connection.set_schema_to_public()
    return count


def _post(client, url, **data):
    return client.post(url, data, HTTP_ACCEPT_LANGUAGE="vi", HTTP_ACCEPT="application/json")


@pytest.mark.parametrize("enrolment", ["1; DROP TABLE x", "../../1", "٧", "７", "-1", "", "9" * 30])
def test_a_score_save_for_a_malformed_student_is_refused_with_a_message(
    client_as, subject_teacher, school, secondary_class, enrolment
):
    url = f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/o/"
    before = _changes(school)
    response = _post(client_as(subject_teacher), url, enrolment=enrolment, term="1", field="mid", value="7")

    assert (response.status_code, response.json()) == (400, {"error": MALFORMED})
    assert _changes(school) == before


@pytest.mark.parametrize("term", ["x", "١", "1 OR 1=1"])
def test_a_score_save_for_a_malformed_term_is_refused_with_a_message(
    client_as, subject_teacher, school, secondary_class, term
):
    enrolment = _enrolment(secondary_class)
    url = f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/o/"
    response = _post(
        client_as(subject_teacher), url, enrolment=enrolment.pk, term=term, field="mid", value="7"
    )

    assert (response.status_code, response.json()) == (400, {"error": MALFORMED})


@pytest.mark.parametrize("subject", ["khong-co", "toan'--", "a" * 300])
def test_a_score_save_in_a_subject_the_class_does_not_learn_answers_404_with_a_message(
    client_as, subject_teacher, school, secondary_class, subject
):
    enrolment = _enrolment(secondary_class)
    url = f"/truong/{school.code}/so-diem/{secondary_class.pk}/{subject}/o/"
    response = _post(
        client_as(subject_teacher), url, enrolment=enrolment.pk, term="1", field="mid", value="7"
    )

    assert (response.status_code, response.json()) == (404, {"error": NOT_FOUND})


def test_a_score_save_in_a_class_that_does_not_exist_answers_404_with_a_message(
    client_as, subject_teacher, school, secondary_class
):
    url = f"/truong/{school.code}/so-diem/999999/toan/o/"
    response = _post(client_as(subject_teacher), url, enrolment="1", term="1", field="mid", value="7")

    assert (response.status_code, response.json()) == (404, {"error": NOT_FOUND})


@pytest.mark.parametrize("suffix", ["lop/{pk}/o/", "lop/{pk}/he/o/"])
def test_a_homeroom_or_august_save_for_a_malformed_student_is_refused_with_a_message(
    client_as, homeroom_teacher, school, secondary_class, suffix
):
    url = f"/truong/{school.code}/so-diem/" + suffix.format(pk=secondary_class.pk)
    response = _post(client_as(homeroom_teacher), url, enrolment="1; DROP", field="conduct", value="T")

    assert (response.status_code, response.json()) == (400, {"error": MALFORMED})


@pytest.mark.parametrize("suffix", ["lop/999999/o/", "lop/999999/he/o/"])
def test_a_homeroom_or_august_save_in_a_class_that_does_not_exist_answers_404_with_a_message(
    client_as, homeroom_teacher, school, suffix
):
    url = f"/truong/{school.code}/so-diem/{suffix}"
    response = _post(client_as(homeroom_teacher), url, enrolment="1", field="conduct", value="T")

    assert (response.status_code, response.json()) == (404, {"error": NOT_FOUND})


def test_a_cell_save_holding_a_nul_byte_is_refused_in_json(
    client_as, subject_teacher, school, secondary_class
):
    client = client_as(subject_teacher)
    enrolment = _enrolment(secondary_class)
    url = f"/truong/{school.code}/so-diem/{secondary_class.pk}/toan/o/"
    before = _changes(school)

    response = _post(client, url, enrolment=enrolment.pk, term="1", field="mid", value="7\x00")

    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "Yêu cầu bị từ chối: có ký tự rỗng (NUL) trong dữ liệu biểu mẫu."
    )
    assert _changes(school) == before


def test_a_subject_teacher_refused_a_homeroom_cell_gets_the_reason(
    client_as, subject_teacher, school, secondary_class
):
    enrolment = _enrolment(secondary_class)
    url = f"/truong/{school.code}/so-diem/lop/{secondary_class.pk}/o/"
    response = _post(client_as(subject_teacher), url, enrolment=enrolment.pk, field="conduct", value="T")

    assert (response.status_code, response.json()) == (
        403,
        {"error": "Chỉ giáo viên chủ nhiệm của lớp được nhập mục này."},
    )
