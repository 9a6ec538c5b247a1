"""Who may export a student's personal data (registry.views_privacy): the principal of the school,
and the department administrator under a data grant; everyone else of the school sees 403, anyone
outside it 404, and a student id the school does not have is 404. No refused request leaves a row.
The export link on the student's book is shown to those allowed only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from portal.models import RoleAssignment
from registry.models import PersonalDataExport
from schools.models import Student
from tests.conftest import student_make

REASON = "Đơn đề nghị số 3/2026"


@pytest.fixture
def pupil(school):
    connection.set_tenant(school)
    student = Student.objects.get(student_code="CS002")
    connection.set_schema_to_public()
    return student


def url(school, student_id) -> str:
    return f"/truong/{school.code}/du-lieu-ca-nhan/{student_id}/"


def test_the_principal_opens_the_form_and_gets_the_zip(client_as, principal, school, pupil):
    client = client_as(principal)
    assert client.get(url(school, pupil.pk)).status_code == 200
    response = client.post(url(school, pupil.pk), {"reason": REASON})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert b"".join(response.streaming_content)[:2] == b"PK"
    assert PersonalDataExport.objects.filter(actor=principal, school=school).count() == 1


def test_the_department_administrator_exports_only_under_a_data_grant(
    client_as, department_admin, school, pupil
):
    client = client_as(department_admin)
    assert client.post(url(school, pupil.pk), {"reason": REASON}).status_code in (403, 404)
    RoleAssignment.objects.filter(user=department_admin).update(data_access=True)
    client = client_as(department_admin)
    response = client.post(url(school, pupil.pk), {"reason": REASON})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"


@pytest.mark.parametrize(
    "name", ["vice_principal", "school_admin", "homeroom_teacher", "subject_teacher", "department_officer"]
)
def test_the_schools_other_people_are_refused_with_403(client_as, persona, school, pupil, name):
    client = client_as(persona(name))
    assert client.get(url(school, pupil.pk)).status_code == 403
    assert client.post(url(school, pupil.pk), {"reason": REASON}).status_code == 403
    assert not PersonalDataExport.objects.exists()


@pytest.mark.parametrize(
    "name", ["teacher_of_another_school", "other_school_admin", "other_division_officer"]
)
def test_people_outside_the_school_get_404(client_as, persona, school, pupil, name):
    client = client_as(persona(name))
    assert client.get(url(school, pupil.pk)).status_code == 404
    assert client.post(url(school, pupil.pk), {"reason": REASON}).status_code == 404
    assert not PersonalDataExport.objects.exists()


def test_a_division_officer_of_the_schools_division_without_a_grant_is_refused(
    client_as, division_officer, school, pupil
):
    response = client_as(division_officer).post(url(school, pupil.pk), {"reason": REASON})
    assert response.status_code in (403, 404)
    assert not PersonalDataExport.objects.exists()


def test_a_student_id_the_school_does_not_have_is_404_even_for_the_principal(
    client_as, principal, school, other_school
):
    connection.set_tenant(other_school)
    theirs = student_make("B-0777", "Học Sinh Trường Khác", 1, dt.date(2012, 6, 1))
    connection.set_schema_to_public()
    connection.set_tenant(school)
    mine = set(Student.objects.values_list("pk", flat=True))
    connection.set_schema_to_public()
    unknown = max(mine | {theirs.pk}) + 1000
    client = client_as(principal)
    if theirs.pk not in mine:
        assert client.post(url(school, theirs.pk), {"reason": REASON}).status_code == 404
    assert client.post(url(school, unknown), {"reason": REASON}).status_code == 404
    # The other school's page itself: not the principal's school.
    assert client.post(url(other_school, theirs.pk), {"reason": REASON}).status_code == 404
    assert not PersonalDataExport.objects.exists()


def test_the_books_export_link_is_shown_to_the_principal_only(
    client_as, principal, vice_principal, school, pupil
):
    book = f"/truong/{school.code}/hoc-ba/{pupil.pk}/"
    link = url(school, pupil.pk).encode()
    assert link in client_as(principal).get(book).content
    assert link not in client_as(vice_principal).get(book).content


def test_a_get_never_exports_and_other_methods_are_refused(client_as, principal, school, pupil):
    client = client_as(principal)
    assert client.get(url(school, pupil.pk), {"reason": REASON}).status_code == 200
    assert client.put(url(school, pupil.pk)).status_code == 405
    assert not PersonalDataExport.objects.exists()
