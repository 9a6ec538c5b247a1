# ruff: noqa: F811 -- pytest fixtures imported from other test modules are parameters here
"""The year record PDF sealed as a PDF (issue 13): a seal batch signs each issued record's PDF.

A class is signed through the real batch path (teacher, principal, seal: signing_batch_run in the
test's process, as tests/signing/test_batches.py does) with the reference TSA (a real process,
fixture `timestamping`). The stored PDF is then read by two independent readers:

- poppler's `pdfsig`, with an NSS database in which only the test CA's root is trusted
  (certutil, Debian's libnss3-tools);
- pyHanko's validator (validate_pdf_signature), offline, on the test roots and CRLs;

and by our own report (signing.pades.pdf_signature_report), which both callers of the archive and
the verification page use. One byte changed after signing is reported by all three.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from cryptography import x509
from django.db import connection
from django.utils import timezone
from django.utils.translation import override
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore

from portal.models import AuditEntry
from signing import ca, trust
from signing.models import BatchState, ItemState, SigningBatch
from signing.pades import FIELD_NAME, _validation_context, pdf_signature_report
from signing.services import signing_batch_run
from tests.signing.test_batch_backends import TOKEN_PIN, seal_token  # noqa: F401
from tests.signing.test_batches import confirmed, start_and_run, teacher_signs, totp_code, two_factor  # noqa: F401
from tests.signing_kit import PIN, sign_step
from tests.transcripts.test_pdf import pdf_streams
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.models import YearRecord, YearRecordPdf
from transcripts.pdf.marks import LOCAL_TIME
from transcripts.records.pdf import year_record_pdfs_missing, year_record_pdfs_render

TIME = re.compile(r"Thời gian ký: (\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})")


def tool(name: str, *args: str | Path, ok: bool = True) -> str:
    """Run a command-line tool (poppler-utils, libnss3-tools) and return its output."""
    if shutil.which(name) is None:  # fail, never skip: a quiet skip let a green run check nothing
        pytest.fail(f"{name} is missing: apt-get install poppler-utils libnss3-tools")
    result = subprocess.run([name, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    if ok:
        assert result.returncode == 0, result.stderr
    return unicodedata.normalize("NFC", result.stdout + result.stderr)


@pytest.fixture
def nss_db(tmp_path, signing_trust) -> str:
    """An NSS database trusting the test CA's root only (what pdfsig validates the chain against)."""
    folder = tmp_path / "nss"
    folder.mkdir()
    tool("certutil", "-N", "-d", f"sql:{folder}", "--empty-password")
    tool(
        "certutil",
        "-A",
        "-d",
        f"sql:{folder}",
        "-n",
        "hocba-test-root",
        "-t",
        "CT,C,C",
        "-i",
        signing_trust.roots_file,
    )
    return f"sql:{folder}"


@pytest.fixture
def sealed(
    timestamping,
    homeroom_teacher,
    principal,
    school_admin,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
):
    """8A's records issued through three real batches; the seal batch sealed their PDFs."""
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    start_and_run(
        actor=principal,
        school=school,
        step="principal",
        certificate=certificates["principal"],
        totp=totp_code(principal),
    )
    batch = start_and_run(actor=school_admin, school=school, step="seal", certificate=certificates["seal"])
    connection.set_tenant(school)
    pdfs = list(
        YearRecordPdf.objects.filter(record__in=confirmed).select_related("record").order_by("record_id")
    )
    assert len(pdfs) == len(confirmed)
    return batch, pdfs


def signing_trust_seal(school) -> bytes:
    """The school seal's key file from the session's CA (PIN tests.signing_kit.PIN)."""
    from tests import signing_kit

    return signing_kit.CURRENT.seal(school.name)


def _report(pdf: bytes):
    return pdf_signature_report(
        pdf, trust_roots=trust.trust_roots(), tsa_roots=trust.tsa_roots(), crls=trust.crls()
    )


def _altered(pdf: bytes) -> bytes:
    """One byte of the signed part changed: a digit of the first page's MediaBox."""
    at = pdf.index(b"/MediaBox")
    digit = next(i for i in range(at, at + 40) if pdf[i : i + 1].isdigit() and pdf[i : i + 1] != b"0")
    changed = bytearray(pdf)
    changed[digit] = ord("0")
    return bytes(changed)


def test_pdfsig_reads_the_seal_valid_over_the_whole_document_and_a_changed_byte_breaks_it(
    sealed, school, nss_db, tmp_path
):
    _batch, pdfs = sealed
    row = pdfs[0]
    assert row.sealed and row.sealed_by == school.name and row.sealed_at is not None
    path = tmp_path / "sealed.pdf"
    path.write_bytes(bytes(row.pdf))

    out = tool("pdfsig", "-nssdir", nss_db, path)

    assert out.count("Signature #") == 1, out
    assert f"Signature Field Name: {FIELD_NAME}" in out
    assert f"Signer Certificate Common Name: {school.name}" in out
    assert "Signature Type: ETSI.CAdES.detached" in out
    assert "Signing Hash Algorithm: SHA-256" in out
    assert "Total document signed" in out
    assert "Signature Validation: Signature is Valid." in out
    assert "Certificate Validation: Certificate is Trusted." in out

    # Still a PDF/A-3b (ISO 32000-1): PDF 1.7 with the PAdES (ESIC) extension, not raised to 2.0,
    # every font embedded (the stamp's Noto Serif subset too), the metadata unchanged.
    assert re.search(r"PDF version:\s+1\.7", tool("pdfinfo", path))
    fonts = tool("pdffonts", path).splitlines()[2:]
    assert all(" yes yes yes " in line for line in fonts), fonts
    assert any(line.split()[0].endswith("+NotoSerif-Regular-Identity-H") for line in fonts), fonts  # stamp
    assert b"/ESIC" in bytes(row.pdf) and b"pdfaid:part" in b"".join(pdf_streams(bytes(row.pdf)))

    altered = tmp_path / "altered.pdf"
    altered.write_bytes(_altered(bytes(row.pdf)))
    out = tool("pdfsig", "-nssdir", nss_db, altered, ok=False)
    assert "Signature is Valid" not in out and "Digest Mismatch" in out, out


def test_pyhanko_validates_the_seal_offline_with_its_timestamp_and_embedded_validation_data(sealed, school):
    _batch, pdfs = sealed
    pdf = bytes(pdfs[0].pdf)
    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    dss = DocumentSecurityStore.read_dss(reader)
    context = _validation_context(trust.trust_roots(), trust.crls(), None)  # no DSS help: the roots
    ts_context = _validation_context([*trust.trust_roots(), *trust.tsa_roots()], trust.crls(), None)

    status = validate_pdf_signature(
        signature, signer_validation_context=context, ts_validation_context=ts_context
    )

    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.coverage.name == "ENTIRE_FILE"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    stamp = status.timestamp_validity
    assert stamp is not None and stamp.intact and stamp.valid and stamp.trusted
    # The validation data (LTV): the signer's and the TSA's certificates and their CRLs, in the DSS.
    names = {c.subject.native.get("common_name", "") for c in dss.load_certs()}
    assert school.name in names  # the seal's certificate
    assert any(name.endswith(" TSA") for name in names), names  # the TSA's (reference/tsa)
    assert len(dss.crls) == 2  # the test CA's issuing CA and the TSA's CA
    # Our report says the same, and that the time is the timestamp's.
    (report,) = _report(pdf)
    assert report.valid and report.intact and report.trusted and report.unchanged, report.problems
    assert report.signer == school.name and report.timestamped and report.validation_data
    assert report.time == stamp.timestamp and report.coverage == "entire_file"

    # Another CA's root only: intact, but not trusted.
    stranger = ca.dev_ca("Một CA khác").root_cert
    (untrusted,) = pdf_signature_report(
        pdf, trust_roots=[stranger], tsa_roots=trust.tsa_roots(), crls=trust.crls()
    )
    assert untrusted.intact and not untrusted.trusted and not untrusted.valid
    assert any("not trusted" in p for p in untrusted.problems), untrusted.problems

    (broken,) = _report(_altered(pdf))
    assert not broken.valid and not broken.intact
    assert any("altered" in p for p in broken.problems), broken.problems
    status = validate_pdf_signature(
        PdfFileReader(io.BytesIO(_altered(pdf))).embedded_signatures[0],
        signer_validation_context=context,
        ts_validation_context=ts_context,
    )
    assert not status.intact and not status.bottom_line


def test_the_marks_of_the_three_signers_are_on_the_page_of_their_blocks(
    sealed, school, homeroom_teacher, principal, tmp_path
):
    _batch, pdfs = sealed
    row = pdfs[0]
    path = tmp_path / "sealed.pdf"
    path.write_bytes(bytes(row.pdf))
    pages = int(re.search(r"Pages:\s+(\d+)", tool("pdfinfo", path)).group(1))
    text = {n: tool("pdftotext", "-f", n, "-l", n, "-enc", "UTF-8", path, "-") for n in range(1, pages + 1)}

    # Page 1: the seal's stamp (its PAdES signature's appearance) beside the principal's mark.
    assert f"Ký bởi: {school.name}" in text[1]
    assert f"Chức vụ/Đơn vị: {school.name}" in text[1]
    assert f"Ký bởi: {principal.full_name}" in text[1]
    assert "Chức vụ: Hiệu trưởng" in text[1]
    # The homeroom teacher's block (the secondary form: pages 2 and 3), with the principal's again.
    assert f"Ký bởi: {homeroom_teacher.full_name}" in text[pages]
    assert f"Ký bởi: {principal.full_name}" in text[pages]
    assert "Chức vụ: Giáo viên chủ nhiệm" in text[pages]
    times = TIME.findall(text[1]) + TIME.findall(text[pages])
    assert len(times) >= 4
    # The stamp's time is the seal's, Vietnam time, within the minute the PDF was sealed.
    sealed_at = row.sealed_at.astimezone(LOCAL_TIME).strftime("%d/%m/%Y %H:%M:%S")
    assert sealed_at in times


def test_a_second_run_seals_nothing_twice_and_the_pdfs_are_audited(sealed, school):
    batch, pdfs = sealed
    before = {p.record_id: p.sha256 for p in pdfs}
    connection.set_schema_to_public()
    assert signing_batch_run(batch_pk=batch.pk, worker="another") == "not claimed"  # done
    connection.set_tenant(school)
    assert {p.record_id: p.sha256 for p in YearRecordPdf.objects.filter(record_id__in=before)} == before
    entries = AuditEntry.objects.filter(action="year_record_signed", school=school, changes__pdf_sealed=True)
    assert sorted(int(e.object_id) for e in entries) == sorted(before)
    assert all(e.changes["batch"] == batch.pk for e in entries)
    assert not YearRecord.objects.filter(pk__in=before, pdf__sealed=False).exists()


def test_a_tsa_down_at_the_pdfs_pauses_the_batch_and_its_next_run_seals_them(
    sealed, school, settings, timestamping
):
    batch, pdfs = sealed
    records = [p.record_id for p in pdfs]
    # What a worker that died after the items, before the PDFs, leaves: the batch running with its
    # lease run out and its confirmation kept, the records issued, their PDFs not made.
    YearRecordPdf.objects.filter(record_id__in=records).delete()
    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING,
        lease_owner="a-dead-worker",
        lease_until=timezone.now() - dt.timedelta(seconds=1),
        secret=trust.seal_secret(PIN),
        finished_at=None,
    )
    settings.HOCBA_TSA_URL = "http://127.0.0.1:9/"  # nothing listens there: connection refused
    connection.set_schema_to_public()

    assert signing_batch_run(batch_pk=batch.pk, worker="second") == "paused"

    paused = SigningBatch.objects.get(pk=batch.pk)
    assert paused.state == BatchState.QUEUED and paused.next_attempt_at is not None and paused.retry_reason
    assert paused.secret is not None  # kept for the next run
    connection.set_tenant(school)
    assert not YearRecordPdf.objects.filter(record_id__in=records).exists()  # nothing half-made

    settings.HOCBA_TSA_URL = timestamping.url  # the TSA answers again; the pause is over
    SigningBatch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    connection.set_schema_to_public()
    assert signing_batch_run(batch_pk=batch.pk, worker="third") == "done"

    connection.set_tenant(school)
    done = SigningBatch.objects.get(pk=batch.pk)
    assert done.state == BatchState.DONE and done.secret is None
    assert list(done.items.values_list("state", flat=True)) == [ItemState.DONE] * len(records)
    for row in YearRecordPdf.objects.filter(record_id__in=records):
        assert row.sealed
        (report,) = _report(bytes(row.pdf))
        assert report.valid and report.timestamped, report.problems


def test_a_seal_on_a_token_seals_the_pdf_through_its_digest_signer(
    timestamping,
    homeroom_teacher,
    principal,
    school_admin,
    school,
    confirmed,
    certificates,
    two_factor,
    approved_class,
    seal_token,
    nss_db,
    tmp_path,
):
    """The seal's key on a PKCS#11 token (SoftHSM2): pyHanko's CMS is signed by sign_digest."""
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    start_and_run(
        actor=principal,
        school=school,
        step="principal",
        certificate=certificates["principal"],
        totp=totp_code(principal),
    )
    start_and_run(actor=school_admin, school=school, step="seal", certificate=seal_token, pin=TOKEN_PIN)
    connection.set_tenant(school)

    for row in YearRecordPdf.objects.filter(record__in=confirmed):
        assert row.sealed
        (report,) = _report(bytes(row.pdf))
        assert report.valid and report.timestamped and report.signer == school.name, report.problems
        path = tmp_path / f"{row.record_id}.pdf"
        path.write_bytes(bytes(row.pdf))
        assert "Signature Validation: Signature is Valid." in tool("pdfsig", "-nssdir", nss_db, path)


def test_the_sweep_leaves_batch_sealed_records_to_their_batch_then_renders_them_unsealed(
    sealed, school, settings
):
    _batch, pdfs = sealed
    records = sorted(p.record_id for p in pdfs)
    YearRecordPdf.objects.filter(record_id__in=records).delete()  # as if the batch gave up on them
    # As at their issue: listed as due (portal.PdfDue), no task queued: left to their batch.
    assert year_record_pdfs_render(records) == []
    connection.set_schema_to_public()

    # Within HOCBA_PDF_SEAL_GRACE_SECONDS the batch's phase two is the one to make them, sealed.
    assert year_record_pdfs_missing().get(school.code, []) == []
    # After it, the sweep queues them: rendered unsealed (with the marks) rather than never.
    settings.HOCBA_PDF_SEAL_GRACE_SECONDS = 0
    assert sorted(year_record_pdfs_missing()[school.code]) == records


def test_a_record_sealed_outside_a_batch_gets_the_tasks_pdf_even_after_batch_steps(
    homeroom_teacher, principal, school_admin, school, confirmed, certificates, two_factor, approved_class
):
    """Only the seal signature's own batch decides: a record whose earlier steps were batches and
    whose seal was made directly is rendered by the task (unsealed, with the marks)."""
    school_class, _ = approved_class
    teacher_signs(homeroom_teacher, school, certificates, school_class)
    start_and_run(
        actor=principal,
        school=school,
        step="principal",
        certificate=certificates["principal"],
        totp=totp_code(principal),
    )
    connection.set_tenant(school)
    record = YearRecord.objects.get(pk=confirmed[0].pk)
    sign_step(record, step="seal", actor=school_admin, school=school, p12=signing_trust_seal(school))

    assert year_record_pdfs_render([record.pk]) == [record.pk]
    assert record.signatures.filter(position=2, batch_item_pk__isnull=False).exists()


def test_a_seal_revoked_before_the_pdfs_leaves_them_unsealed_with_the_reason(sealed, school, signing_trust):
    batch, pdfs = sealed
    records = [p.record_id for p in pdfs]
    # The worker died after the items; the seal's certificate is revoked before the PDFs are made.
    YearRecordPdf.objects.filter(record_id__in=records).delete()
    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING,
        lease_owner="a-dead-worker",
        lease_until=timezone.now() - dt.timedelta(seconds=1),
        secret=trust.seal_secret(PIN),
        finished_at=None,
    )
    seal = SigningBatch.objects.get(pk=batch.pk).certificate
    signing_trust.revoke(x509.load_der_x509_certificate(bytes(seal.certificate)))
    try:
        connection.set_schema_to_public()
        with override("en"):
            assert signing_batch_run(batch_pk=batch.pk, worker="second") == "done"
        connection.set_tenant(school)
        rows = list(YearRecordPdf.objects.filter(record_id__in=records))
        assert len(rows) == len(records) and not any(r.sealed for r in rows)  # never without its PDF
        assert all(_report(bytes(r.pdf)) == [] for r in rows)  # no PDF signature at all
        unsealed = AuditEntry.objects.filter(action="year_record_signed", changes__pdf_sealed=False)
        assert sorted(int(e.object_id) for e in unsealed) == sorted(records)
        assert all("revoked" in e.changes["reason"] for e in unsealed), [e.changes for e in unsealed]
    finally:
        signing_trust.unrevoke_all()
