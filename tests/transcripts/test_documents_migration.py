"""Migration 0015 on a school schema that has PDFs in its table: each one's bytes go to the documents
storage (checked against its SHA-256), an issued version's XML is copied beside it, the bytea
column goes; backwards, every object comes back into the column. Run inside the test's
transaction (PostgreSQL's DDL is transactional): the schema is as before once it rolls back."""

from __future__ import annotations

import hashlib

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.signing_kit import issue
from tests.transcripts import test_year_close, test_year_records
from transcripts.models import YearRecordPdf, YearRecordXml
from transcripts.records.services import year_record_document
from transcripts.records.storage import document_get, documents_storage

complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records

BEFORE = ("transcripts", "0014_year_record_renewal")
AFTER = ("transcripts", "0015_documents_in_storage")


def migrate(target: tuple[str, str]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor


def test_0015_moves_a_schools_pdfs_to_the_storage_and_back(homeroom_teacher, principal, school, records):
    sealed = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_tenant(school)
    sealed_xml = year_record_document(sealed)
    pdfs = {sealed.pk: b"%PDF-1.7\n% sealed record\n%%EOF\n", records[1].pk: b"%PDF-1.7\n% unsealed\n%%EOF\n"}

    with connection.cursor() as cursor:  # the rows' deferred checks run now: migrating alters their tables
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = migrate(BEFORE)
    OldPdf = executor.loader.project_state(BEFORE).apps.get_model("transcripts", "YearRecordPdf")
    for record_pk, data in pdfs.items():
        OldPdf.objects.create(
            record_id=record_pk, pdf=data, sha256=hashlib.sha256(data).hexdigest(), renderer="weasyprint 65"
        )

    with connection.cursor() as cursor:  # their foreign keys checked now, not at the test's end
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    migrate(AFTER)
    for record_pk, data in pdfs.items():
        row = YearRecordPdf.objects.get(record_id=record_pk)
        assert row.name.startswith(f"{school.schema_name}/") and row.name.endswith(f"/{row.sha256}.pdf")
        assert row.size == len(data) and document_get(row.name, row.sha256) == data
    copy = YearRecordXml.objects.get()  # only the sealed version's XML is a download copy
    assert copy.record_id == sealed.pk and copy.xml == sealed_xml
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'transcripts_yearrecordpdf' AND column_name = 'pdf'",
            [school.schema_name],
        )
        assert cursor.fetchone() is None

    # Backwards: the bytes come back from the storage into the column, checked.
    executor = migrate(BEFORE)
    OldPdf = executor.loader.project_state(BEFORE).apps.get_model("transcripts", "YearRecordPdf")
    assert {row.record_id: bytes(row.pdf) for row in OldPdf.objects.all()} == pdfs
    migrate(AFTER)
    assert documents_storage().exists(YearRecordPdf.objects.get(record_id=sealed.pk).name)
