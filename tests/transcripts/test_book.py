"""The record follows the student: a receiving school attaches earlier records after verifying
them, and the student's book shows every year, from whichever school issued it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils.translation import gettext, override

from portal.choices import Role
from portal.models import AuditEntry, IssuedRecord, User
from portal.selectors import personal_id_digest
from portal.services import role_assignment_grant
from schools.models import SchoolClass, Student
from schools.services import class_create, school_year_open, student_enrol
from tests.conftest import student_make
from tests.signing_kit import PIN, issue
from tests.transcripts.test_homeroom import fill_secondary
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.book import prior_record_attach, prior_records_find, student_book
from transcripts.models import AttachedRecord, StudentYear
from transcripts.records.services import year_records_create
from transcripts.yearclose import class_year_close

PID_BORN = dt.date(2012, 6, 1)


@pytest.fixture
def other_school_staff(department_admin, other_school):
    """A principal and a homeroom teacher for the other school, granted by the department admin."""
    connection.set_schema_to_public()
    staff = {}
    for key, role, name in (
        ("principal", Role.PRINCIPAL, "Trịnh Hiệu Trưởng"),
        ("homeroom", Role.HOMEROOM_TEACHER, "Cao Chủ Nhiệm"),
    ):
        user = User.objects.create_user(username=f"b-{key}", password="x", full_name=name)
        role_assignment_grant(actor=department_admin, user=user, role=role, school=other_school)
        staff[key] = user
    return staff


@pytest.fixture
def issue_in_other_school(other_school, other_school_staff):
    """issue_in_other_school(student) -> the index row of a grade 7 record (2024-2025) that the
    other school issued for a pupil with the same identity (personal ID included)."""

    def make(student: Student) -> IssuedRecord:
        principal, homeroom = other_school_staff["principal"], other_school_staff["homeroom"]
        connection.set_tenant(other_school)
        year = school_year_open(
            code="2024-2025",
            starts_on=dt.date(2024, 9, 5),
            ends_on=dt.date(2025, 5, 31),
            levels=list(other_school.levels),
        )
        school_class = class_create(
            school_year=year, name="7B", grade=7, levels=other_school.levels, homeroom_teacher=homeroom
        )
        pupil = Student.objects.create(
            student_code="B-0001",
            personal_id=student.personal_id or "010212000001",
            full_name=student.full_name,
            sex=student.sex,
            date_of_birth=student.date_of_birth,
        )
        enrolment = student_enrol(
            student=pupil, school_class=school_class, enrolled_on=year.starts_on, number=1
        )
        fill_secondary(school_class, "7.0")
        StudentYear.objects.create(
            enrolment=enrolment, conduct_term1="T", conduct_term2="T", conduct_year="T"
        )
        class_year_close(actor=principal, school=other_school, school_class=school_class)
        (record,) = year_records_create(
            actor=homeroom, school=other_school, school_class=school_class
        ).created
        record = issue(record, homeroom_teacher=homeroom, principal=principal, school=other_school)
        connection.set_schema_to_public()
        return IssuedRecord.objects.get(record_id=record.record_id, version=record.version)

    return make


@pytest.fixture
def newcomer(school):
    """A student who has just arrived in the test school's 8A (no record here yet)."""
    connection.set_tenant(school)
    student = student_make("CS-NEW", "Đinh Thị Chuyển", 2, PID_BORN)
    student_enrol(
        student=student, school_class=SchoolClass.objects.get(name="8A"), enrolled_on=dt.date(2025, 9, 5)
    )
    connection.set_schema_to_public()
    return student


def book_url(school, student, suffix=""):
    return f"/truong/{school.code}/hoc-ba/{student.pk}/{suffix}"


def test_earlier_records_are_found_by_the_keyed_hash_of_the_personal_id(
    school, other_school, newcomer, issue_in_other_school
):
    entry = issue_in_other_school(newcomer)
    assert entry.school == other_school and entry.status == "issued"
    assert entry.personal_id_digest == personal_id_digest(newcomer.personal_id)

    connection.set_tenant(school)
    found = prior_records_find(school=school, student=newcomer)
    assert [(c.entry.pk, c.attached) for c in found] == [(entry.pk, False)]


def test_the_principal_attaches_a_verified_record_and_the_book_shows_it(
    client_as, principal, school, other_school, newcomer, issue_in_other_school
):
    entry = issue_in_other_school(newcomer)
    client = client_as(principal)
    page = client.get(book_url(school, newcomer, "tim/"))
    assert page.status_code == 200 and entry.record_id in page.content.decode()

    response = client.post(book_url(school, newcomer, "tim/"), {"issued_record": entry.pk})
    assert response.status_code == 302 and response["Location"] == book_url(school, newcomer)

    connection.set_tenant(school)
    attached = AttachedRecord.objects.get(student=newcomer)
    connection.set_tenant(other_school)
    from transcripts.models import YearRecord
    from transcripts.records.services import year_record_document

    issued_xml = year_record_document(YearRecord.objects.get(record_id=entry.record_id))
    assert bytes(attached.xml) == issued_xml and attached.sha256 == entry.sha256
    assert (attached.source_school_code, attached.school_year, attached.grade, attached.class_name) == (
        other_school.code,
        "2024-2025",
        7,
        "7B",
    )
    assert attached.source_school_name == other_school.name and attached.attached_by == principal
    connection.set_schema_to_public()
    audit = AuditEntry.objects.get(action="year_record_attached")
    assert (audit.actor, audit.school) == (principal, school)
    assert audit.changes["sha256"] == entry.sha256

    page = client.get(book_url(school, newcomer)).content.decode()
    assert other_school.name in page and "2024-2025" in page and "7B" in page
    assert reverse("registry:verify_record", args=[entry.record_id, entry.version]) in page
    assert entry.get_absolute_url() in page  # with the verification code: the link shows the record

    # Found again, it is marked attached; attaching twice is refused.
    connection.set_tenant(school)
    assert [c.attached for c in prior_records_find(school=school, student=newcomer)] == [True]
    with pytest.raises(ValidationError) as refused:
        prior_record_attach(actor=principal, school=school, student=newcomer, issued_record=entry)
    assert refused.value.code == "attached"


def test_the_book_shows_every_year_in_order_own_and_attached(
    school_admin,
    homeroom_teacher,
    principal,
    school,
    other_school,
    records,  # noqa: F811
    issue_in_other_school,
):
    own = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    student = own.enrolment.student
    connection.set_schema_to_public()
    entry = issue_in_other_school(student)

    connection.set_tenant(school)
    prior_record_attach(actor=school_admin, school=school, student=student, issued_record=entry)
    years = student_book(school=school, student=student)
    assert [(y.school_year, y.grade, y.school_name, y.own, y.status) for y in years] == [
        ("2024-2025", 7, other_school.name, False, "issued"),
        ("2025-2026", 8, school.name, True, "issued"),
    ]
    assert all(y.verifiable for y in years)


def test_a_tampered_index_row_makes_attach_refuse(principal, school, newcomer, issue_in_other_school):
    entry = issue_in_other_school(newcomer)
    IssuedRecord.objects.filter(pk=entry.pk).update(sha256="0" * 64)
    entry.refresh_from_db()

    connection.set_tenant(school)
    with pytest.raises(ValidationError) as refused:
        prior_record_attach(actor=principal, school=school, student=newcomer, issued_record=entry)
    assert refused.value.code == "mismatch"
    assert not AttachedRecord.objects.exists()
    assert connection.schema_name == school.schema_name  # back in the receiving school


def test_a_record_whose_seal_was_revoked_is_not_attached(
    principal, school, other_school, newcomer, issue_in_other_school, signing_trust
):
    from cryptography.hazmat.primitives.serialization import pkcs12

    entry = issue_in_other_school(newcomer)
    _key, seal, _chain = pkcs12.load_key_and_certificates(signing_trust.seal(other_school.name), PIN.encode())
    signing_trust.revoke(seal)
    try:
        connection.set_tenant(school)
        with pytest.raises(ValidationError) as refused:
            prior_record_attach(actor=principal, school=school, student=newcomer, issued_record=entry)
    finally:
        signing_trust.unrevoke_all()
    assert refused.value.code == "signature"
    with override("vi"):
        assert gettext("The certificate has been revoked by the authority that issued it.") in str(
            refused.value
        )
    assert not AttachedRecord.objects.exists()


def test_a_superseded_or_another_students_record_is_not_attached(
    principal, school, newcomer, issue_in_other_school
):
    entry = issue_in_other_school(newcomer)
    connection.set_tenant(school)
    other = student_make("CS-OTHER", "Võ Văn Khác", 1, dt.date(2012, 7, 1))
    with pytest.raises(ValidationError) as refused:
        prior_record_attach(actor=principal, school=school, student=other, issued_record=entry)
    assert refused.value.code == "other_student"
    IssuedRecord.objects.filter(pk=entry.pk).update(status="superseded")
    assert prior_records_find(school=school, student=newcomer) == []
    with pytest.raises(ValidationError) as refused:
        prior_record_attach(actor=principal, school=school, student=newcomer, issued_record=entry)
    assert refused.value.code == "not_in_force"


def test_a_student_without_a_personal_id_finds_nothing(client_as, principal, school, issue_in_other_school):
    connection.set_tenant(school)
    student = student_make("CS-TAM", "Đinh Thị Chuyển", 2, PID_BORN, personal_id=False)
    connection.set_schema_to_public()
    entry = issue_in_other_school(student)  # issued elsewhere for some number; this one has none

    connection.set_tenant(school)
    assert prior_records_find(school=school, student=student) == []
    with pytest.raises(ValidationError) as refused:
        prior_record_attach(actor=principal, school=school, student=student, issued_record=entry)
    assert refused.value.code == "no_personal_id"
    connection.set_schema_to_public()
    page = client_as(principal).get(book_url(school, student, "tim/"))
    assert page.status_code == 200
    with override("vi"):
        message = gettext(
            "This student has no verified personal ID number. Earlier records are found only by that "
            "number: enter it in the student's details first."
        )
    assert message in page.content.decode()
    assert entry.record_id not in page.content.decode()


def test_a_subject_teacher_cannot_attach(client_as, subject_teacher, school, newcomer, issue_in_other_school):
    entry = issue_in_other_school(newcomer)
    client = client_as(subject_teacher)
    assert client.get(book_url(school, newcomer, "tim/")).status_code == 403
    assert client.post(book_url(school, newcomer, "tim/"), {"issued_record": entry.pk}).status_code == 403
    connection.set_tenant(school)
    with pytest.raises(PermissionDenied):
        prior_record_attach(actor=subject_teacher, school=school, student=newcomer, issued_record=entry)
    assert not AttachedRecord.objects.exists()


def test_a_teacher_of_another_school_gets_404_on_the_book(
    client_as, teacher_of_another_school, school, newcomer
):
    client = client_as(teacher_of_another_school)
    assert client.get(book_url(school, newcomer)).status_code == 404
    assert client.get(book_url(school, newcomer, "tim/")).status_code == 404


def test_attached_records_are_append_only_in_the_database(principal, school, newcomer, issue_in_other_school):
    entry = issue_in_other_school(newcomer)
    connection.set_tenant(school)
    attached = prior_record_attach(actor=principal, school=school, student=newcomer, issued_record=entry)
    for sql in (
        "UPDATE transcripts_attachedrecord SET sha256 = repeat('0', 64) WHERE id = %s",
        "DELETE FROM transcripts_attachedrecord WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [attached.pk])
