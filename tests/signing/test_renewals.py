# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""manage.py archive_timestamp: issued records renewed with archive timestamps (XAdES-LTA) through
the real TSA, stored append-only (the database refuses changes), audited, and what the public page
and an independent verifier then judge."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError
from lxml import etree

from portal.choices import AuditAction
from portal.models import AuditEntry
from signing import trust
from signing.longterm import XADES141
from signing.verify import all_valid, verify_year_record
from tests.portal.test_verification import code_url
from tests.signing.xmlsec import write_pems, xmlsec1_results
from tests.signing_kit import issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecordRenewal
from transcripts.records.services import year_record_archived_document, year_record_document


@pytest.fixture
def issued(timestamping, homeroom_teacher, principal, school, records):
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_schema_to_public()
    return record


def run(*args) -> str:
    out = io.StringIO()
    call_command("archive_timestamp", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def verify(xml: bytes, *, now=None):
    return verify_year_record(
        xml, trust_roots=trust.trust_roots(), crls=trust.crls(), tsa_roots=trust.tsa_roots(), now=now
    )


def test_renewal_adds_an_archive_timestamp_to_every_signature_and_keeps_the_issued_bytes(
    issued, school, signing_trust, tmp_path, client
):
    with school:
        sealed = year_record_document(issued)
    assert "Due: 0" in run("--school", school.code, "--dry-run", "--due-within-days", "30")
    assert "Renewed: 0" in run("--school", school.code, "--due-within-days", "30")  # 5 years left
    out = run("--school", school.code, "--all")
    assert "Renewed: 1" in out and "failed: 0" in out
    with school:
        renewal = YearRecordRenewal.objects.get(record=issued)
        archived = year_record_archived_document(issued)
        assert year_record_document(issued) == sealed  # the issued document is untouched
    assert archived == bytes(renewal.renewed_xml) and renewal.sequence == 1
    assert renewal.proof_until is not None and renewal.proof_until > dt.datetime.now(dt.UTC)
    assert len(etree.fromstring(archived).findall(f".//{{{XADES141}}}ArchiveTimeStamp")) == 3
    reports = verify(archived)
    assert all_valid(reports) and [r.level for r in reports] == ["LTA"] * 3
    assert xmlsec1_results(archived, write_pems(signing_trust.ca, tmp_path / "pems"), tmp_path) == [True] * 3
    # Audited, with the school.
    entry = AuditEntry.objects.get(action=AuditAction.YEAR_RECORD_RENEWED)
    assert entry.school_id == school.pk and entry.changes["sequence"] == 1
    # Six years on, the issued document's proof has lapsed; the page judges the renewal... which
    # was made by the same TSA (one certificate), so it lapses too: renewal needs a newer TSA
    # certificate, which is what the schedule in docs/operations.md is about.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=6 * 365)
    assert not all_valid(verify(sealed, now=later))
    # The public page verifies the renewed copy (the archive timestamps show in its level).
    response = client.get(code_url(issued))
    assert response.status_code == 200
    assert response.content.decode().count('data-level="LTA"') == 3
    # Twice: a second renewal follows the first.
    run("--school", school.code, "--all")
    with school:
        assert list(YearRecordRenewal.objects.filter(record=issued).values_list("sequence", flat=True)) == [
            1,
            2,
        ]
        second = year_record_archived_document(issued)
    assert len(etree.fromstring(second).findall(f".//{{{XADES141}}}ArchiveTimeStamp")) == 6
    assert all_valid(verify(second))


def test_the_database_refuses_changing_or_forging_a_renewal(issued, school):
    run("--school", school.code, "--all")
    with school:
        renewal = YearRecordRenewal.objects.get(record=issued)
        for change in (
            lambda: YearRecordRenewal.objects.filter(pk=renewal.pk).update(renewed_xml=b"<x/>"),
            lambda: YearRecordRenewal.objects.filter(pk=renewal.pk).delete(),
            # Another content under the record (the sha256 right, the content not the record's).
            lambda: YearRecordRenewal.objects.create(
                record=issued,
                sequence=2,
                renewed_xml=b"<hocba><thongtinhocba>other</thongtinhocba></hocba>",
                sha256=hashlib.sha256(b"<hocba><thongtinhocba>other</thongtinhocba></hocba>").hexdigest(),
            ),
            # A gap in the sequence.
            lambda: YearRecordRenewal.objects.create(
                record=issued, sequence=5, renewed_xml=bytes(renewal.renewed_xml), sha256=renewal.sha256
            ),
        ):
            with pytest.raises((IntegrityError, InternalError, DatabaseError)), transaction.atomic():
                change()


def test_records_without_timestamps_are_counted_not_renewed(homeroom_teacher, principal, school, records):
    issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_schema_to_public()
    out = run("--school", school.code, "--all", "--dry-run")
    assert "without timestamp (baseline B, not renewable): 1" in out


def test_a_renewed_copy_uploaded_is_verified_as_the_issued_one_and_a_changed_one_is_not(
    issued, school, client
):
    from tests.portal.test_verification import log_rows, upload

    run("--school", school.code, "--all")
    with school:
        renewed = year_record_archived_document(issued)
    response = upload(client, "record.xml", renewed)
    assert response.status_code == 200
    assert response.content.decode().count('data-level="LTA"') == 3
    # One byte more in an unsigned property: neither the issued bytes nor a renewal.
    changed = renewed.replace(
        b"</xades:UnsignedSignatureProperties>", b" </xades:UnsignedSignatureProperties>", 1
    )
    assert upload(client, "record.xml", changed).status_code == 404
    assert log_rows() == [("upload_xml", "found", ""), ("upload_xml", "not_found", "mismatch")]


def test_a_tsa_that_is_down_fails_the_run_with_its_reason_not_a_traceback(issued, school, settings):
    settings.HOCBA_TSA_URL = "http://127.0.0.1:9/"  # nothing listens there
    from signing.timestamps import timestamper_reset

    timestamper_reset()
    err = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("archive_timestamp", "--school", school.code, "--all", stdout=io.StringIO(), stderr=err)
    timestamper_reset()
    assert "unreachable" in err.getvalue()
    with school:
        assert not YearRecordRenewal.objects.filter(record=issued).exists()
