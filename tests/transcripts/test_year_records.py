"""Year records in the database: created from an approved year, frozen once signed, corrected by versions."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from lxml import etree

from portal.models import AuditEntry
from schools.models import CurriculumEntry, Enrolment, SchoolClass, Student
from tests.signing_kit import sign_step
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- a fixture used below
from transcripts.document import year_record_parse
from transcripts.models import (
    PrimarySubjectAssessment,
    QualityAssessment,
    YearRecord,
    YearRecordEvent,
    YearRecordStatus,
)
from transcripts.records.services import (
    year_record_confirm,
    year_record_correct,
    year_record_correction_approve,
    year_record_revoke,
    year_record_transition,
    year_records_create,
)
from transcripts.results import COMPETENCY_CODES, QUALITY_CODES
from transcripts.schema import year_record_schema
from transcripts.yearclose import class_summer_close, class_year_close, summer_cell_save

S = YearRecordStatus


def valid(xml: bytes) -> bool:
    schema = year_record_schema()
    return schema.validate(etree.fromstring(xml))


@pytest.fixture
def approved_class(principal, school, complete_class):  # noqa: F811 -- the fixture imported above
    """8A approved: two students promoted, two waiting for August (re-assessment, re-training)."""
    school_class, enrolments = complete_class
    class_year_close(actor=principal, school=school, school_class=school_class)
    return SchoolClass.objects.get(pk=school_class.pk), enrolments


@pytest.fixture
def records(homeroom_teacher, school, approved_class):
    """The two promoted students' records, in class order."""
    school_class, _ = approved_class
    created = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class).created
    return sorted(created, key=lambda r: r.enrolment.number)


@pytest.fixture
def signed(homeroom_teacher, school, records, signing_keys):
    """The first record, confirmed and signed by the homeroom teacher: its content is frozen."""
    record = year_record_confirm(actor=homeroom_teacher, school=school, record=records[0])
    return sign_step(
        record,
        step="homeroom_teacher",
        actor=homeroom_teacher,
        school=school,
        p12=signing_keys["homeroom_teacher"],
    )


def test_records_are_created_for_an_approved_class_with_valid_xml_and_its_hash(
    homeroom_teacher, school, approved_class
):
    school_class, enrolments = approved_class
    outcome = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class)

    assert len(outcome.created) == 2 and outcome.existing == 0
    assert sorted(outcome.waiting) == sorted(e.student.full_name for e in enrolments[:2])
    for record in YearRecord.objects.filter(enrolment__school_class=school_class):
        xml = bytes(record.xml)
        assert valid(xml)
        assert record.sha256 == hashlib.sha256(xml).hexdigest()
        assert record.status == S.DATA_COMPLETE and record.version == 1
        document = year_record_parse(xml)
        assert (
            document.record_id
            == record.record_id
            == f"{school.code}.{record.enrolment.student.student_code}.2025-2026"
        )
        assert document.student.full_name == record.enrolment.student.full_name
        assert document.signers.homeroom_teacher == "Ngô Chủ Nhiệm"
        assert document.signers.principal == "Đặng Hiệu Trưởng"
        assert document.issuer.school_name == school.name
        assert document.part.outcome == "promoted" and document.part.subjects[0].teacher
        assert YearRecordEvent.objects.filter(
            record=record, from_status="", to_status=S.DATA_COMPLETE
        ).exists()
    assert (
        AuditEntry.objects.filter(
            action="year_records_created", school=school, actor=homeroom_teacher
        ).count()
        == 1
    )


def test_creating_again_leaves_existing_records_alone(homeroom_teacher, principal, school, records):
    school_class = records[0].enrolment.school_class
    again = year_records_create(actor=principal, school=school, school_class=school_class)
    assert again.created == [] and again.existing == 2
    assert YearRecord.objects.filter(enrolment__school_class=school_class).count() == 2


def test_primary_records_carry_the_vietnamese_names_of_qualities(principal, school, primary_class):
    enrolments = list(Enrolment.objects.filter(school_class=primary_class))
    entries = CurriculumEntry.objects.filter(
        school_year_id=primary_class.school_year_id, grade=primary_class.grade
    )
    PrimarySubjectAssessment.objects.bulk_create(
        PrimarySubjectAssessment(
            enrolment=e,
            subject_id=c.subject_id,
            period="end2",
            level="T",
            test_score=9 if c.has_test else None,
        )
        for e in enrolments
        for c in entries
    )
    QualityAssessment.objects.bulk_create(
        QualityAssessment(enrolment=e, code=code, period="end2", level="T")
        for e in enrolments
        for code in QUALITY_CODES + COMPETENCY_CODES
    )
    class_year_close(actor=principal, school=school, school_class=primary_class)
    created = year_records_create(actor=principal, school=school, school_class=primary_class).created

    assert len(created) == 4
    document = year_record_parse(bytes(created[0].xml))
    assert valid(bytes(created[0].xml))
    assert document.level == "primary" and document.part.result == "HTXS"
    assert document.part.completed_primary is True
    assert document.part.qualities[0].name == "Yêu nước"


def test_records_are_refused_before_the_year_is_approved(homeroom_teacher, school, secondary_class):
    with pytest.raises(ValidationError):
        year_records_create(actor=homeroom_teacher, school=school, school_class=secondary_class)
    assert not YearRecord.objects.exists()


def test_a_subject_teacher_neither_creates_nor_confirms_records(
    subject_teacher, school, approved_class, records
):
    school_class, _ = approved_class
    with pytest.raises(PermissionDenied):
        year_records_create(actor=subject_teacher, school=school, school_class=school_class)
    with pytest.raises(PermissionDenied):
        year_record_confirm(actor=subject_teacher, school=school, record=records[0])
    assert YearRecord.objects.get(pk=records[0].pk).status == S.DATA_COMPLETE


def test_the_lifecycle_goes_step_by_step_each_step_by_its_signer(
    homeroom_teacher, principal, school_admin, school, records, signing_keys
):
    record = records[0]
    for skipped in (S.ISSUED, S.SIGNED_HOMEROOM, S.SIGNED_PRINCIPAL, S.ACKNOWLEDGED):
        with pytest.raises(ValidationError):
            year_record_transition(actor=principal, school=school, record=record, to_status=skipped)
    # The principal does not confirm for the homeroom teacher, nor the teacher sign for the principal.
    with pytest.raises(PermissionDenied):
        year_record_confirm(actor=principal, school=school, record=record)
    # Signing steps are made only by signing (year_record_sign), never by a transition.
    with pytest.raises(ValidationError):
        year_record_transition(
            actor=homeroom_teacher, school=school, record=record, to_status=S.SIGNED_HOMEROOM
        )
    with pytest.raises(ValidationError):  # not confirmed yet
        sign_step(
            record,
            step="homeroom_teacher",
            actor=homeroom_teacher,
            school=school,
            p12=signing_keys["homeroom_teacher"],
        )
    year_record_confirm(actor=homeroom_teacher, school=school, record=record)
    with pytest.raises(ValidationError):  # the principal does not sign before the homeroom teacher
        sign_step(record, step="principal", actor=principal, school=school, p12=signing_keys["principal"])
    sign_step(
        record,
        step="homeroom_teacher",
        actor=homeroom_teacher,
        school=school,
        p12=signing_keys["homeroom_teacher"],
    )
    with pytest.raises(PermissionDenied):
        sign_step(
            record, step="principal", actor=homeroom_teacher, school=school, p12=signing_keys["principal"]
        )
    with pytest.raises(ValidationError):  # a second signature at a signed step
        sign_step(
            record,
            step="homeroom_teacher",
            actor=homeroom_teacher,
            school=school,
            p12=signing_keys["homeroom_teacher"],
        )
    sign_step(record, step="principal", actor=principal, school=school, p12=signing_keys["principal"])
    with pytest.raises(PermissionDenied):  # the seal is the school office's, not a teacher's
        sign_step(record, step="seal", actor=homeroom_teacher, school=school, p12=signing_keys["seal"])
    sign_step(record, step="seal", actor=school_admin, school=school, p12=signing_keys["seal"])
    # Forwarding is the system's (actor None); a teacher cannot, the system cannot sign.
    with pytest.raises(PermissionDenied):
        year_record_transition(actor=homeroom_teacher, school=school, record=record, to_status=S.QUEUED)
    year_record_transition(actor=None, school=school, record=record, to_status=S.QUEUED)
    year_record_transition(actor=None, school=school, record=record, to_status=S.ACKNOWLEDGED)

    history = list(YearRecordEvent.objects.filter(record=record).values_list("to_status", flat=True))
    assert history == [
        S.DATA_COMPLETE,
        S.CONFIRMED,
        S.SIGNED_HOMEROOM,
        S.SIGNED_PRINCIPAL,
        S.ISSUED,
        S.QUEUED,
        S.ACKNOWLEDGED,
    ]
    assert (
        AuditEntry.objects.filter(action="year_record_status_changed", object_id=str(record.pk)).count() == 3
    )
    assert AuditEntry.objects.filter(action="year_record_signed", object_id=str(record.pk)).count() == 3


def raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize(
    ("assignment", "value"),
    [
        ("xml = %s, sha256 = encode(sha256(%s), 'hex')", b"<hocba/>"),
        ("record_id = %s", "forged.CS001.2025-2026"),
        ("version = %s", 7),
        ("correction_reason = %s", "edited afterwards"),
    ],
)
def test_the_database_refuses_to_change_a_signed_records_content_even_in_raw_sql(signed, assignment, value):
    params = [value] * assignment.count("%s") + [signed.pk]
    with pytest.raises(DatabaseError, match="is signed: its content cannot change"), transaction.atomic():
        raw(f"UPDATE transcripts_yearrecord SET {assignment} WHERE id = %s", params)  # noqa: S608 -- fixed SQL
    assert bytes(YearRecord.objects.get(pk=signed.pk).xml) == bytes(signed.xml)


def test_the_database_refuses_to_move_a_signed_record_to_another_enrolment_or_version(signed, records):
    other = records[1]
    for assignment, value in [("enrolment_id = %s", other.enrolment_id), ("supersedes_id = %s", other.pk)]:
        with pytest.raises(DatabaseError, match="cannot change"), transaction.atomic():
            raw(f"UPDATE transcripts_yearrecord SET {assignment} WHERE id = %s", [value, signed.pk])  # noqa: S608


def test_the_database_refuses_to_delete_a_signed_record_or_walk_it_back(signed):
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        raw("DELETE FROM transcripts_yearrecord WHERE id = %s", [signed.pk])
    with pytest.raises(DatabaseError, match="cannot move to confirmed"), transaction.atomic():
        raw("UPDATE transcripts_yearrecord SET status = 'confirmed' WHERE id = %s", [signed.pk])
    with pytest.raises(DatabaseError, match="cannot move to issued"), transaction.atomic():
        raw("UPDATE transcripts_yearrecord SET status = 'issued' WHERE id = %s", [signed.pk])
    # Even forward, a signed state needs its signature (migration 0009): no raw "signed" status.
    with pytest.raises(DatabaseError, match="needs its signature first"), transaction.atomic():
        raw(
            "UPDATE transcripts_yearrecord SET status = 'signed_principal', status_changed_at = now()"
            " WHERE id = %s",
            [signed.pk],
        )
    # Moving forward to a state with no signature (a revocation) touches only the status.
    raw(
        "UPDATE transcripts_yearrecord SET status = 'revoked', status_changed_at = now() WHERE id = %s",
        [signed.pk],
    )
    assert YearRecord.objects.get(pk=signed.pk).status == S.REVOKED


def test_signatures_are_append_only_and_must_carry_the_record_content(signed):
    from transcripts.models import YearRecordSignature

    signature = YearRecordSignature.objects.get(record=signed)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("UPDATE transcripts_yearrecordsignature SET signer_name = 'x' WHERE id = %s", [signature.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM transcripts_yearrecordsignature WHERE id = %s", [signature.pk])
    forged = bytes(signature.signed_xml).replace(b"<thongtinhocba", b'<thongtinhocba data-x="1"', 1)
    with pytest.raises(DatabaseError, match="does not carry the record"), transaction.atomic():
        YearRecordSignature.objects.create(
            record=signed,
            position=2,
            role="principal",
            signed_xml=forged,
            sha256=hashlib.sha256(forged).hexdigest(),
            signer=signature.signer,
            signer_name="x",
            certificate_fingerprint="0" * 64,
            certificate_serial="1",
        )
    with pytest.raises(DatabaseError, match="comes before"), transaction.atomic():
        YearRecordSignature.objects.create(
            record=signed,
            position=3,
            role="seal",
            signed_xml=bytes(signature.signed_xml),
            sha256=signature.sha256,
            signer=signature.signer,
            signer_name="x",
            certificate_fingerprint="0" * 64,
            certificate_serial="1",
        )


def test_the_database_refuses_a_hash_that_is_not_the_xmls(records):
    with pytest.raises(DatabaseError, match="not the hash"), transaction.atomic():
        raw("UPDATE transcripts_yearrecord SET xml = %s WHERE id = %s", [b"<hocba/>", records[0].pk])


def test_the_record_history_is_append_only(signed):
    event = YearRecordEvent.objects.filter(record=signed).first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("UPDATE transcripts_yearrecordevent SET note = 'x' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw("DELETE FROM transcripts_yearrecordevent WHERE id = %s", [event.pk])


def test_two_versions_in_force_for_one_record_are_refused_by_the_database(signed):
    with pytest.raises(IntegrityError), transaction.atomic():
        YearRecord.objects.create(
            enrolment=signed.enrolment,
            record_id=signed.record_id,
            version=2,
            supersedes=signed,
            status=S.DATA_COMPLETE,
            xml=bytes(signed.xml),
            sha256=signed.sha256,
            correction_reason="forged",
            created_by=signed.created_by,
        )


def test_renaming_the_student_leaves_the_record_unchanged_and_a_correction_takes_the_new_name(
    homeroom_teacher, principal, school, signed
):
    before = bytes(signed.xml)
    Student.objects.filter(pk=signed.enrolment.student_id).update(full_name="Nguyễn Văn Tên Mới")

    assert bytes(YearRecord.objects.get(pk=signed.pk).xml) == before
    correction = year_record_correct(
        actor=homeroom_teacher, school=school, record=signed, reason="Họ tên sai so với giấy khai sinh"
    )
    document = year_record_parse(bytes(correction.xml))
    assert document.student.full_name == "Nguyễn Văn Tên Mới"
    assert year_record_parse(before).student.full_name != "Nguyễn Văn Tên Mới"
    assert document.status == "correction" and document.supersedes.version == 1
    assert valid(bytes(correction.xml))


def test_a_correction_is_a_new_version_and_its_approval_supersedes_the_old_one(
    homeroom_teacher, principal, school, signed
):
    with pytest.raises(ValidationError):
        year_record_correct(actor=homeroom_teacher, school=school, record=signed, reason="  ")
    correction = year_record_correct(actor=homeroom_teacher, school=school, record=signed, reason="Sai điểm")
    assert (correction.version, correction.supersedes_id, correction.status) == (2, signed.pk, S.DRAFT)
    # One pending correction at a time; the old version stays in force until approval.
    with pytest.raises(ValidationError):
        year_record_correct(actor=homeroom_teacher, school=school, record=signed, reason="Lần nữa")
    assert YearRecord.objects.get(pk=signed.pk).status == S.SIGNED_HOMEROOM
    with pytest.raises(PermissionDenied):
        year_record_correction_approve(actor=homeroom_teacher, school=school, record=correction)

    year_record_correction_approve(actor=principal, school=school, record=correction)

    old, new = YearRecord.objects.get(pk=signed.pk), YearRecord.objects.get(pk=correction.pk)
    assert old.status == S.SUPERSEDED and bytes(old.xml) == bytes(signed.xml)
    assert new.status == S.DATA_COMPLETE  # to be confirmed and signed again
    year_record_confirm(actor=homeroom_teacher, school=school, record=new)
    assert AuditEntry.objects.filter(action="year_record_correction_approved", object_id=str(new.pk)).exists()
    # Approving twice, or correcting a superseded version, is refused.
    with pytest.raises(ValidationError):
        year_record_correction_approve(actor=principal, school=school, record=new)
    with pytest.raises(ValidationError):
        year_record_correct(actor=homeroom_teacher, school=school, record=old, reason="Sai")


def test_the_principal_revokes_a_record_with_a_reason(homeroom_teacher, principal, school, signed):
    with pytest.raises(PermissionDenied):
        year_record_revoke(actor=homeroom_teacher, school=school, record=signed, reason="Nhầm học sinh")
    with pytest.raises(ValidationError):
        year_record_revoke(actor=principal, school=school, record=signed, reason="")
    year_record_revoke(actor=principal, school=school, record=signed, reason="Nhầm học sinh")

    record = YearRecord.objects.get(pk=signed.pk)
    assert record.status == S.REVOKED and bytes(record.xml) == bytes(signed.xml)
    assert YearRecordEvent.objects.filter(record=record, to_status=S.REVOKED, note="Nhầm học sinh").exists()
    with pytest.raises(ValidationError):
        year_record_revoke(actor=principal, school=school, record=record, reason="Lần nữa")
    with pytest.raises(ValidationError):
        year_record_transition(actor=principal, school=school, record=record, to_status=S.SIGNED_PRINCIPAL)


def test_students_decided_in_august_get_their_records_after_the_august_close(
    homeroom_teacher, principal, school, approved_class, records
):
    school_class, enrolments = approved_class
    for enrolment, field, value in [
        (enrolments[0], "retake:toan", "6"),
        (enrolments[1], "conduct_after_training", "Đ"),
    ]:
        summer_cell_save(
            actor=homeroom_teacher,
            school=school,
            school_class=school_class,
            enrolment_id=enrolment.pk,
            field=field,
            raw=value,
        )
    class_summer_close(actor=principal, school=school, school_class=school_class)

    outcome = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class)

    assert (len(outcome.created), outcome.existing, outcome.waiting) == (2, 2, [])
    by_enrolment = {r.enrolment_id: year_record_parse(bytes(r.xml)) for r in outcome.created}
    retaken = by_enrolment[enrolments[0].pk].part
    toan = next(s for s in retaken.subjects if s.code == "toan")
    assert (toan.year, toan.after_reassessment) == ("2.0", "6.0")
    assert (retaken.outcome, retaken.promoted) == ("reassessment", True)
    trained = by_enrolment[enrolments[1].pk].part
    assert (trained.conduct.year, trained.conduct.after_reassessment, trained.promoted) == ("CĐ", "Đ", True)
    assert all(valid(bytes(r.xml)) for r in outcome.created)
