"""The documents storage (transcripts.records.storage) on the filesystem, the tests' default: write-once
names that carry the SHA-256, every read checked, and the database's guards on the rows that name
the objects (migration 0015)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from tests.transcripts import test_year_close, test_year_records
from tests.transcripts.test_records_pages import record_url, store_pdf
from transcripts.models import YearRecordPdf
from transcripts.records.storage import (
    DocumentMissing,
    DocumentTampered,
    document_get,
    document_name,
    document_put,
    documents_storage,
)

complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records

PDF = b"%PDF-1.7\n% stored once\n%%EOF\n"


def name_of(data: bytes, *, kind: str = "pdf", record_id: str = "t-th-a.HS-1.2025-2026") -> str:
    return document_name(
        schema="t_th_a", record_id=record_id, version=1, sha256=hashlib.sha256(data).hexdigest(), kind=kind
    )


def on_disk(name: str) -> Path:
    return Path(documents_storage().path(name))


def test_the_tests_store_documents_in_a_temporary_directory_not_the_projects():
    location = Path(documents_storage().location)
    assert location.parent == Path(tempfile.gettempdir()) and location.name.startswith("hocba-documents-")


def test_a_document_is_stored_under_its_name_and_read_back_checked():
    name = name_of(PDF)
    stored = document_put(name, PDF)
    assert (stored.name, stored.sha256, stored.size) == (name, hashlib.sha256(PDF).hexdigest(), len(PDF))
    assert name.startswith("t_th_a/t-th-a.HS-1.2025-2026/v1/") and name.endswith(f"/{stored.sha256}.pdf")
    assert on_disk(name).read_bytes() == PDF
    assert document_get(name, stored.sha256) == PDF


def test_storing_the_same_bytes_again_keeps_the_one_object():
    name = name_of(PDF + b"again", record_id="t-th-a.HS-AGAIN.2025-2026")
    document_put(name, PDF + b"again")
    again = document_put(name, PDF + b"again")  # a retry, two renderings of one record
    assert again.name == name
    assert sorted(p.name for p in on_disk(name).parent.iterdir()) == [on_disk(name).name]


def test_a_name_that_does_not_carry_the_bytes_hash_is_refused():
    with pytest.raises(ValueError, match="SHA-256"):
        document_put(name_of(b"other bytes"), PDF)


def test_an_object_changed_in_the_store_is_never_overwritten_nor_read():
    data = PDF + b"original"
    name = name_of(data)
    document_put(name, data)
    on_disk(name).write_bytes(b"%PDF-1.7 forged")
    with pytest.raises(DocumentTampered):
        document_put(name, data)  # the store's bytes are not ours: refused, not overwritten
    assert on_disk(name).read_bytes() == b"%PDF-1.7 forged"
    with pytest.raises(DocumentTampered):
        document_get(name, hashlib.sha256(data).hexdigest())


def test_a_missing_object_is_said_missing():
    with pytest.raises(DocumentMissing):
        document_get(name_of(b"never stored"), hashlib.sha256(b"never stored").hexdigest())


@pytest.mark.parametrize("record_id", ["../etc", "a/b", "", ".hidden", "a\x00b", "x" * 101])
def test_names_are_made_only_of_safe_parts(record_id):
    with pytest.raises(ValueError):
        name_of(PDF, record_id=record_id)


def test_names_are_only_of_known_kinds_and_hashes():
    with pytest.raises(ValueError):
        document_name(schema="s", record_id="r", version=1, sha256="0" * 64, kind="html")
    with pytest.raises(ValueError):
        document_name(schema="s", record_id="r", version=1, sha256="NOT-A-HASH", kind="pdf")


# The rows --------------------------------------------------------------------------------------


def test_a_stored_pdf_row_never_changes(school, records):
    connection.set_tenant(school)
    row = store_pdf(records[0])
    other = PDF + b"another rendering"
    stored = document_put(name_of(other, record_id=records[0].record_id), other)
    for change in (
        {"name": stored.name, "sha256": stored.sha256, "size": stored.size},
        {"renderer": "weasyprint 99"},
        {"size": row.size + 1},
    ):
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic():
            YearRecordPdf.objects.filter(pk=row.pk).update(**change)
    assert YearRecordPdf.objects.get(pk=row.pk).name == row.name


def test_a_pdf_row_cannot_name_an_object_of_other_bytes(school, records):
    connection.set_tenant(school)
    other = name_of(b"other", record_id=records[0].record_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        YearRecordPdf.objects.create(
            record=records[0], name=other, size=len(PDF), sha256=hashlib.sha256(PDF).hexdigest(), renderer="t"
        )


def test_the_downloaded_pdf_is_the_stored_object(client_as, homeroom_teacher, school, records):
    connection.set_tenant(school)
    row = store_pdf(records[0], PDF + b"served")
    assert on_disk(row.name).read_bytes() == PDF + b"served"
    response = client_as(homeroom_teacher).get(record_url(school, records[0], "pdf/"))
    assert response.status_code == 200 and response.content == PDF + b"served"
