"""The reference CSC service, started once for the session (tests/reference/service.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.db import connection, transaction

from tests.reference.service import CscService


@pytest.fixture(scope="session")
def csc_service() -> Iterator[CscService]:
    service = CscService()
    try:
        yield service
    finally:
        service.stop()


# --- The reference Ministry repository: genuinely sealed year records to send it ----------------


@dataclass(frozen=True)
class SealedDocument:
    """One issued record version as the portal would forward it."""

    record_id: str
    school_code: str
    version: int
    personal_id: str
    xml: bytes


@dataclass(frozen=True)
class MinistryDocuments:
    """Sealed year records of the test school (8A, every student promoted) and the PEMs of the CA
    that issued their signers' certificates, for the repository's --trust-roots/--untrusted-pem."""

    records: list[SealedDocument]  # version 1 of each record, in class order
    correction: SealedDocument  # version 2 of records[0]
    roots_pem: Path
    intermediates_pem: Path


def _seal_records(school, homeroom_teacher, principal) -> tuple[list, object]:
    from schools.models import Enrolment, SchoolClass
    from tests.signing_kit import issue
    from tests.transcripts.test_homeroom import fill_secondary
    from transcripts.models import StudentYear, YearRecord
    from transcripts.records.services import (
        year_record_correct,
        year_record_correction_approve,
        year_records_create,
    )
    from transcripts.yearclose import class_year_close

    connection.set_tenant(school)
    school_class = SchoolClass.objects.get(name="8A")
    fill_secondary(school_class, "7.0")
    for enrolment in Enrolment.objects.filter(school_class=school_class):
        StudentYear.objects.create(
            enrolment=enrolment, conduct_term1="K", conduct_term2="K", conduct_year="K"
        )
    class_year_close(actor=principal, school=school, school_class=school_class)
    created = year_records_create(actor=homeroom_teacher, school=school, school_class=school_class).created
    records = sorted(created, key=lambda r: r.enrolment.number)
    issued = [
        issue(r, homeroom_teacher=homeroom_teacher, principal=principal, school=school) for r in records
    ]
    correction = year_record_correct(
        actor=homeroom_teacher, school=school, record=issued[0], reason="Sai điểm môn Toán"
    )
    year_record_correction_approve(actor=principal, school=school, record=correction)
    correction = issue(
        YearRecord.objects.get(pk=correction.pk),
        homeroom_teacher=homeroom_teacher,
        principal=principal,
        school=school,
    )
    return issued, correction


@pytest.fixture(scope="module")
def ministry_documents(
    django_db_setup, django_db_blocker, signing_trust, tmp_path_factory
) -> MinistryDocuments:
    """Every record of 8A issued (signed, sealed) with the session's test CA, and a correction of
    the first: their sealed XML kept in memory, the database changes rolled back."""
    from portal.models import School, User
    from tests.conftest import SCHOOLS
    from transcripts.records.services import year_record_document

    def sealed(record) -> SealedDocument:
        return SealedDocument(
            record_id=record.record_id,
            school_code=school.code,
            version=record.version,
            personal_id=record.enrolment.student.personal_id,
            xml=year_record_document(record),
        )

    with django_db_blocker.unblock():
        try:
            with transaction.atomic():
                school = School.objects.get(code=SCHOOLS["school"][0])
                homeroom_teacher = User.objects.get(username="homeroom_teacher")
                principal = User.objects.get(username="principal")
                issued, correction = _seal_records(school, homeroom_teacher, principal)
                documents = [sealed(record) for record in issued]
                corrected = sealed(correction)
                transaction.set_rollback(True)
        finally:
            connection.set_schema_to_public()
    folder = tmp_path_factory.mktemp("ministry-trust")
    roots, intermediates = folder / "roots.pem", folder / "issuing.pem"
    roots.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.roots))
    intermediates.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in signing_trust.ca.chain))
    return MinistryDocuments(documents, corrected, roots, intermediates)
