"""Attacks on the documents storage: someone with write access to the object store (or the disk)
but not to the database swaps a stored PDF or issued XML for a forged one, or deletes it. The
SHA-256 the database recorded is checked on every read: the forged bytes are never handed out, the
person gets a clear page in Vietnamese (503, never a 500), the refusal is logged; with the
database itself the row cannot be pointed at other bytes (migration 0015's guards)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from portal.models import CopyLog
from tests.signing_kit import issue
from tests.transcripts import test_year_close, test_year_records
from tests.transcripts.test_records_pages import record_url, store_pdf
from transcripts.models import YearRecordPdf, YearRecordXml
from transcripts.records.pdf import year_record_pdf_render
from transcripts.records.storage import document_name, document_put, documents_storage

complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records

FORGED_PDF = b"%PDF-1.7\n% a forged transcript: every grade an A\n%%EOF\n"


def on_disk(name: str) -> Path:
    return Path(documents_storage().path(name))


@pytest.fixture
def issued_rendered(homeroom_teacher, principal, school, records):
    """The first record issued (signed, sealed) and its documents stored; (record, pdf row, xml row)."""
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    with school:
        year_record_pdf_render(record_id=record.pk)
        pdf = YearRecordPdf.objects.get(record_id=record.pk)
        xml = YearRecordXml.objects.get(record_id=record.pk)
    connection.set_schema_to_public()
    return record, pdf, xml


@pytest.mark.parametrize("kind", ["pdf", "xml"])
def test_a_document_swapped_on_disk_is_refused_with_a_vietnamese_page_and_logged(
    issued_rendered, client_as, homeroom_teacher, school, kind, caplog
):
    record, pdf, xml = issued_rendered
    name = pdf.name if kind == "pdf" else xml.name
    on_disk(name).write_bytes(FORGED_PDF)

    with caplog.at_level(logging.ERROR):
        response = client_as(homeroom_teacher).get(record_url(school, record, f"{kind}/"))

    assert response.status_code == 503
    text = response.content.decode()
    assert "Không thể cấp tài liệu này" in text and "không khớp" in text
    assert b"forged" not in response.content
    assert "tampered" in caplog.text and record.record_id in caplog.text
    assert not CopyLog.objects.filter(record_id=record.record_id).exists()  # no copy handed out


def test_a_document_deleted_from_the_store_is_refused_not_a_500(
    issued_rendered, client_as, homeroom_teacher, school
):
    record, pdf, _xml = issued_rendered
    on_disk(pdf.name).unlink()

    response = client_as(homeroom_teacher).get(record_url(school, record, "pdf/"))

    assert response.status_code == 503
    assert "không đọc được" in response.content.decode()
    assert not CopyLog.objects.filter(record_id=record.record_id).exists()


def test_a_forged_pdf_stored_under_its_own_hash_cannot_be_swapped_into_the_row(issued_rendered, school):
    """An attacker who can write to the store writes a forged PDF under a well-formed name; with
    the database they still cannot make the stored row name it (the row never changes)."""
    record, pdf, _xml = issued_rendered
    with school:
        forged = document_put(
            document_name(
                schema=school.schema_name,
                record_id=record.record_id,
                version=record.version,
                sha256=hashlib.sha256(FORGED_PDF).hexdigest(),
                kind="pdf",
            ),
            FORGED_PDF,
        )
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            YearRecordPdf.objects.filter(pk=pdf.pk).update(
                name=forged.name, sha256=forged.sha256, size=forged.size
            )
        assert YearRecordPdf.objects.get(pk=pdf.pk).sha256 == pdf.sha256


def test_an_xml_copy_that_is_not_the_sealed_document_cannot_be_recorded(issued_rendered, school):
    record, _pdf, xml = issued_rendered
    with school:
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            YearRecordXml.objects.filter(pk=xml.pk).delete()  # write-once: not deleted to be re-made
        forged = b"<hocba>forged</hocba>"
        stored = document_put(
            document_name(
                schema=school.schema_name,
                record_id=record.record_id,
                version=record.version,
                sha256=hashlib.sha256(forged).hexdigest(),
                kind="xml",
            ),
            forged,
        )
        with pytest.raises((IntegrityError, InternalError, ProgrammingError)), transaction.atomic():
            YearRecordXml.objects.update(name=stored.name, sha256=stored.sha256, size=stored.size)


def test_a_row_naming_a_path_outside_its_hash_is_refused(school, records):
    connection.set_tenant(school)
    row = store_pdf(records[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        YearRecordPdf.objects.create(
            record=records[1], name="../../etc/passwd", size=1, sha256=row.sha256, renderer="t"
        )
