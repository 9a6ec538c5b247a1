"""Public verification: the index of issued records, the lookup and QR pages, uploads, the log."""

from __future__ import annotations

import hashlib
import io
import secrets
import time
import zlib

import pytest
from django.db import connection
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext, override

from portal.models import IssuedRecord, VerificationLog
from portal.selectors import personal_id_digest
from tests.signing_kit import issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.document import year_record_parse
from transcripts.models import YearRecord, YearRecordStatus
from transcripts.records.services import (
    year_record_correct,
    year_record_correction_approve,
    year_record_document,
    year_record_revoke,
)

S = YearRecordStatus
QUICK = 3.0  # seconds: a refusal never takes longer than this


@pytest.fixture(autouse=True)
def _generous_rate_limit(settings):
    settings.HOCBA_VERIFY_RATE_LIMIT = 100_000


@pytest.fixture
def issued(homeroom_teacher, principal, school, records):  # noqa: F811
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    record.issued_xml = year_record_document(record)  # the sealed document, as handed out
    connection.set_schema_to_public()
    return record


def said(response, msgid: str, **params) -> bool:
    """The page shows this message, in the language the page was served in (Vietnamese)."""
    with override("vi"):
        text = gettext(msgid) % params if params else gettext(msgid)
    return escape(text) in response.content.decode()


def qr_url(record_id: str, version: int) -> str:
    """The public page of a record id and version, without the verification code."""
    return reverse("registry:verify_record", args=[record_id, version])


def code_url(record, version: int = 1) -> str:
    """The QR code's link: the record's public page with its verification code."""
    return IssuedRecord.objects.get(record_id=record.record_id, version=version).get_absolute_url()


def code_of(record, version: int = 1) -> str:
    return IssuedRecord.objects.get(record_id=record.record_id, version=version).verification_code_display


NO_MATCH = "No issued year record has this id, version and verification code."


def upload(client, name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    started = time.monotonic()
    response = client.post(reverse("registry:verify"), {"file": SimpleUploadedFile(name, data)})
    assert time.monotonic() - started < QUICK
    return response


def log_rows() -> list[tuple[str, str, str]]:
    return list(VerificationLog.objects.order_by("id").values_list("method", "outcome", "reason"))


# --- The index -----------------------------------------------------------------------------------


def test_issuing_indexes_the_record_with_its_hash_and_no_personal_id_in_clear(issued, school):
    entry = IssuedRecord.objects.get(record_id=issued.record_id, version=issued.version)
    student = issued.enrolment.student
    assert entry.school == school and entry.school_year == "2025-2026"
    assert entry.sha256 == hashlib.sha256(issued.issued_xml).hexdigest() and entry.status == "issued"
    assert entry.student_code == student.student_code
    assert len(student.personal_id) == 12
    assert entry.personal_id_digest == personal_id_digest(student.personal_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM portal_issuedrecord t WHERE id = %s", [entry.pk])
        (row,) = cursor.fetchone()
    assert student.personal_id not in row
    # Only issued versions are indexed: the other student's record is still at "data complete".
    assert IssuedRecord.objects.count() == 1


def test_a_record_not_yet_issued_is_not_in_the_index(records, client):  # noqa: F811
    connection.set_schema_to_public()
    response = client.get(qr_url(records[0].record_id, 1), {"code": "K7QX-9M2P-4DHT-W8RC"})
    assert response.status_code == 404
    assert said(response, NO_MATCH)
    assert records[0].enrolment.student.full_name not in response.content.decode()
    assert log_rows() == [("qr", "not_found", "not_found")]


# --- Lookups -----------------------------------------------------------------------------------


def test_lookup_by_id_shows_the_status_name_and_results_but_no_personal_id(issued, client, school):
    response = client.get(
        reverse("registry:verify"), {"record_id": issued.record_id, "version": 1, "code": code_of(issued)}
    )
    assert response.status_code == 200
    page = response.content.decode()
    document = year_record_parse(issued.issued_xml)
    assert document.student.full_name in page
    assert document.issuer.school_name in page and "2025-2026" in page
    for row in document.part.subjects:
        assert escape(row.name) in page
    assert hashlib.sha256(issued.issued_xml).hexdigest() in page
    assert said(response, "Current: this version was issued by the school and is in force.")
    assert not said(response, "No signature yet: this record does not carry a digital signature.")
    # Each signature: who, with what title, and verified (signature and certificate).
    with override("vi"):
        valid = escape(gettext("Valid: signature and certificate verified"))
    assert page.count(valid) == 3
    for name in ("Ngô Chủ Nhiệm", "Đặng Hiệu Trưởng", escape(school.name)):
        assert name in page
    assert "Giáo viên chủ nhiệm" in page and "Hiệu trưởng" in page
    assert issued.enrolment.student.personal_id not in page
    assert log_rows() == [("record_id", "found", "")]
    assert VerificationLog.objects.get().issued_record.record_id == issued.record_id


def test_the_qr_url_opens_the_record(issued, client):
    response = client.get(code_url(issued))
    assert response.status_code == 200
    assert issued.enrolment.student.full_name in response.content.decode()
    assert log_rows() == [("qr", "found", "")]


def test_an_unknown_id_or_version_is_not_found_and_logged(issued, client):
    code = code_of(issued)  # right for version 1 of this id, and for nothing else
    assert client.get(qr_url(issued.record_id, 2), {"code": code}).status_code == 404
    unknown = client.get(reverse("registry:verify"), {"record_id": "nope", "version": 1, "code": code})
    assert unknown.status_code == 404 and said(unknown, NO_MATCH)
    incomplete = client.get(reverse("registry:verify"), {"record_id": issued.record_id, "code": code})
    assert incomplete.status_code == 400
    assert said(incomplete, "Type the record id, the version number and the verification code.")
    assert log_rows() == [("qr", "not_found", "not_found"), ("record_id", "not_found", "not_found")]


# --- Uploads -----------------------------------------------------------------------------------


def test_the_issued_xml_matches(issued, client):
    response = upload(client, "record.xml", issued.issued_xml)
    assert response.status_code == 200
    assert issued.enrolment.student.full_name in response.content.decode()
    assert log_rows() == [("upload_xml", "found", "")]


def test_a_changed_byte_does_not_match(issued, client):
    xml = issued.issued_xml
    name = issued.enrolment.student.full_name.encode()
    changed = xml.replace(name, name[:-1] + (b"X" if name[-1:] != b"X" else b"Y"), 1)
    assert changed != xml and len(changed) == len(xml)
    response = upload(client, "record.xml", changed)
    # Said as for a file whose id was never issued (tests/security/test_enumeration.py): a file
    # made up around a guessed id must not confirm that the id exists.
    assert response.status_code == 404
    assert said(
        response,
        "This file is not an issued year record: no record was issued with exactly these contents "
        "(it may have been changed since it was issued).",
    )
    assert issued.enrolment.student.full_name not in response.content.decode()
    assert issued.record_id not in response.content.decode()
    assert log_rows() == [("upload_xml", "not_found", "mismatch")]


def test_the_issued_pdf_matches_through_its_attachment(issued, client):
    from transcripts.pdf import year_record_pdf

    xml = issued.issued_xml
    url = "https://hocba.example" + qr_url(issued.record_id, 1)
    pdf = year_record_pdf(year_record_parse(xml), xml=xml, verify_url=url)
    response = upload(client, "record.pdf", pdf)
    assert response.status_code == 200
    assert issued.enrolment.student.full_name in response.content.decode()
    assert log_rows() == [("upload_pdf", "found", "")]


def _pdf_with(stream_dict: bytes, data: bytes) -> bytes:
    """A one-page PDF attaching `data` as record.xml, stored as is (raw) in a stream with the
    entries of `stream_dict` (e.g. b"/Filter /FlateDecode"), named in the EmbeddedFiles tree."""
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    stream = pikepdf.Stream(pdf, data)
    for key, value in pikepdf.Dictionary(pikepdf.Object.parse(b"<<" + stream_dict + b">>")).items():
        stream[key] = value
    spec = pikepdf.Dictionary(
        Type=pikepdf.Name.Filespec, F=pikepdf.String("record.xml"), EF=pikepdf.Dictionary(F=stream)
    )
    pdf.Root.Names = pikepdf.Dictionary(
        EmbeddedFiles=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("record.xml"), spec]))
    )
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<hocba xmlns="urn:hocbaso:year-record:1.0">&lol9;</hocba>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE hocba [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<hocba xmlns="urn:hocbaso:year-record:1.0">&xxe;</hocba>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE hocba SYSTEM "http://203.0.113.1/hocba.dtd">
<hocba xmlns="urn:hocbaso:year-record:1.0"/>"""
DTD_MESSAGE = "The file declares a DTD or entities; year records never do, so it is refused unread."


@pytest.mark.parametrize(
    ("name", "data", "msgid", "reason"),
    [
        (
            "notes.txt",
            b"just some text, not XML",
            "The file is not an XML year record, nor a PDF with one attached.",
            "not_xml",
        ),
        (
            "other.xml",
            b"<note>hello</note>",
            "The file is XML but not a year record of this format.",
            "not_a_year_record",
        ),
        (
            "empty.pdf",
            b"%PDF-1.7\n1 0 obj\n<</Type /Catalog>>\nendobj\ntrailer <</Root 1 0 R>>\n%%EOF\n",
            "This PDF has no year record attached.",
            "no_attachment",
        ),
        (
            "bomb.pdf",
            _pdf_with(b"/Type /EmbeddedFile/Filter /FlateDecode", zlib.compress(b"<" + b" " * 20_000_000, 9)),
            "The file is too large to be a year record.",
            "too_large",
        ),
        (
            "text.pdf",
            _pdf_with(b"/Type /EmbeddedFile", b"not a year record"),
            "The file is not an XML year record, nor a PDF with one attached.",
            "not_xml",
        ),
        ("xxe.xml", XXE, DTD_MESSAGE, "dtd"),
        ("laughs.xml", BILLION_LAUGHS, DTD_MESSAGE, "dtd"),
        ("dtd.xml", EXTERNAL_DTD, DTD_MESSAGE, "dtd"),
        ("utf16.xml", '<?xml version="1.0" encoding="UTF-16"?><a/>'.encode("utf-16"), None, "not_xml"),
    ],
)
def test_bad_uploads_are_refused_quickly_with_a_message(issued, client, name, data, msgid, reason):
    response = upload(client, name, data)
    assert response.status_code == 400
    if msgid:
        assert said(response, msgid)
    method = "upload_pdf" if data.startswith(b"%PDF") else "upload_xml"
    assert log_rows() == [(method, "refused", reason)]


def _orphan_stream_pdf(data: bytes) -> bytes:
    """A PDF with an /EmbeddedFile stream that no file specification names: not an attachment."""
    return (
        b"%PDF-1.7\n1 0 obj\n<</Type /Catalog /Pages 3 0 R>>\nendobj\n"
        b"3 0 obj\n<</Type /Pages /Kids [] /Count 0>>\nendobj\n2 0 obj\n<</Type /EmbeddedFile /Length "
        + str(len(data)).encode()
        + b">>\nstream\n"
        + data
        + b"\nendstream\nendobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    )


def _hand_made_pdf(data: bytes, *, page: bytes = b"") -> bytes:
    """A one-page PDF written by hand, without a cross-reference table (qpdf rebuilds it), that
    attaches `data` raw as record.xml; `page` goes into the page's dictionary."""
    return (
        b"%PDF-1.7\n1 0 obj\n<</Type /Catalog /Pages 4 0 R "
        b"/Names <</EmbeddedFiles <</Names [(record.xml) 3 0 R]>>>>>>\nendobj\n"
        b"4 0 obj\n<</Type /Pages /Kids [5 0 R] /Count 1>>\nendobj\n"
        b"5 0 obj\n<</Type /Page /Parent 4 0 R /MediaBox [0 0 10 10] " + page + b">>\nendobj\n"
        b"3 0 obj\n<</Type /Filespec /F (record.xml) /EF <</F 2 0 R>>>>\nendobj\n"
        b"2 0 obj\n<</Type /EmbeddedFile /Length "
        + str(len(data)).encode()
        + b">>\nstream\n"
        + data
        + b"\nendstream\nendobj\ntrailer <</Root 1 0 R /Size 6>>\n%%EOF\n"
    )


def _deeply_nested_pdf(xml: bytes) -> bytes:
    """The record attached, and 100 arrays nested in the page: past the portal's limit (64),
    within qpdf's default (499)."""
    return _hand_made_pdf(xml, page=b"/Deep " + b"[" * 100 + b"]" * 100)


NO_ATTACHMENT = "This PDF has no year record attached."


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("truncated.pdf", lambda xml: b"%PDF-1.7\n1 0 obj\n<</Type /Catalog /Pages 2 0 R"),
        ("garbage.pdf", lambda xml: b"%PDF-1.7\n" + secrets.token_bytes(200_000)),
        ("nested.pdf", _deeply_nested_pdf),
        ("lzw.pdf", lambda xml: _pdf_with(b"/Filter /LZWDecode", xml)),
        (
            "chained.pdf",
            lambda xml: _pdf_with(b"/Filter [/FlateDecode /FlateDecode]", zlib.compress(zlib.compress(xml))),
        ),
        ("orphan.pdf", _orphan_stream_pdf),
    ],
)
def test_a_hostile_or_broken_pdf_is_refused_quickly_as_without_attachment(issued, client, name, make):
    """qpdf reads the PDF under limits; what it cannot read, or an attachment in a form we never
    write (LZW, chained filters, a stream no file specification names), is no attachment."""
    response = upload(client, name, make(issued.issued_xml))
    assert response.status_code == 400
    assert said(response, NO_ATTACHMENT)
    assert log_rows() == [("upload_pdf", "refused", "no_attachment")]


def test_the_record_attached_raw_or_flate_compressed_to_a_pdf_of_another_writer_matches(issued, client):
    raw = upload(client, "raw.pdf", _pdf_with(b"", issued.issued_xml))
    flate = upload(client, "flate.pdf", _pdf_with(b"/Filter /FlateDecode", zlib.compress(issued.issued_xml)))
    by_hand = upload(client, "hand.pdf", _hand_made_pdf(issued.issued_xml))  # the nested one, not nested
    shallow = upload(
        client, "shallow.pdf", _hand_made_pdf(issued.issued_xml, page=b"/A " + b"[" * 60 + b"]" * 60)
    )
    assert raw.status_code == flate.status_code == by_hand.status_code == shallow.status_code == 200
    assert log_rows() == [("upload_pdf", "found", "")] * 4


def test_a_bomb_attachment_is_stopped_at_the_size_limit_not_inflated(issued, client):
    from transcripts.document import MAX_DOCUMENT_BYTES

    bomb = zlib.compress(b" " * (MAX_DOCUMENT_BYTES * 200), 9)  # 400 MB of spaces in under 1 MB
    started = time.monotonic()
    response = upload(client, "bomb.pdf", _pdf_with(b"/Filter /FlateDecode", bomb))
    assert time.monotonic() - started < 1.0
    assert response.status_code == 400
    assert said(response, "The file is too large to be a year record.")
    assert log_rows() == [("upload_pdf", "refused", "too_large")]


def test_a_file_over_the_limit_is_refused_before_it_is_read(issued, client):
    response = upload(client, "big.xml", b"<" + b"a" * (6 * 1024 * 1024))
    assert response.status_code == 400
    assert said(response, "The file is larger than %(size)d MB: a year record is much smaller.", size=5)
    assert log_rows() == [("upload_xml", "refused", "too_large")]


def test_an_empty_upload_form_asks_for_a_file(client, db):
    response = client.post(reverse("registry:verify"), {})
    assert response.status_code == 400
    assert said(response, "Choose an XML or PDF file to upload.")


def test_the_form_page_opens_without_login(client, db):
    response = client.get(reverse("registry:verify"))
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.content.decode()


# --- Statuses after a correction or a revocation ---------------------------------------------------


def test_a_corrected_record_shows_superseded_with_a_link_to_the_new_version(
    issued, homeroom_teacher, principal, school, client
):
    connection.set_tenant(school)
    correction = year_record_correct(
        actor=homeroom_teacher, school=school, record=issued, reason="Sai điểm môn Toán"
    )
    year_record_correction_approve(actor=principal, school=school, record=correction)
    correction = YearRecord.objects.get(pk=correction.pk)
    issue(correction, homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_schema_to_public()

    old = client.get(code_url(issued, 1))
    assert old.status_code == 200
    assert said(old, "Superseded: a correction has replaced this version.")
    assert escape(code_url(issued, 2)) in old.content.decode()  # the new version's link, with its code
    assert code_of(issued, 2) != code_of(issued, 1)
    new = client.get(code_url(issued, 2))
    assert said(new, "Current: this version was issued by the school and is in force.")
    statuses = dict(IssuedRecord.objects.filter(record_id=issued.record_id).values_list("version", "status"))
    assert statuses == {1: "superseded", 2: "issued"}
    # The old version's exact bytes still verify (as superseded).
    assert upload(client, "v1.xml", issued.issued_xml).status_code == 200
    assert len(log_rows()) == 3


def test_a_signature_whose_certificate_was_revoked_is_shown_not_valid(
    issued, client, signing_trust, homeroom_teacher
):
    from cryptography.hazmat.primitives.serialization import pkcs12

    from tests.signing_kit import PIN, TITLES

    p12 = signing_trust.person(homeroom_teacher.full_name, TITLES["homeroom_teacher"])
    _key, cert, _chain = pkcs12.load_key_and_certificates(p12, PIN.encode())
    signing_trust.revoke(cert)
    try:
        response = client.get(code_url(issued))
    finally:
        signing_trust.unrevoke_all()
    with override("vi"):
        valid, not_valid = (
            escape(gettext("Valid: signature and certificate verified")),
            escape(gettext("Not valid")),
        )
    page = response.content.decode()
    assert page.count(valid) == 2 and page.count(not_valid) == 1
    with override("vi"):
        assert escape(gettext("The certificate has been revoked by the authority that issued it.")) in page
    assert "revoked" in page  # the verifier's own words, under "technical detail"


def test_a_revoked_record_shows_revoked(issued, principal, school, client):
    connection.set_tenant(school)
    year_record_revoke(actor=principal, school=school, record=issued, reason="Cấp nhầm")
    connection.set_schema_to_public()

    response = client.get(code_url(issued))
    assert response.status_code == 200
    assert said(response, "Revoked: the school has withdrawn this version.")
    assert IssuedRecord.objects.get(record_id=issued.record_id).status == "revoked"


def test_revoking_a_record_never_issued_leaves_the_index_alone(records, principal, school):  # noqa: F811
    year_record_revoke(actor=principal, school=school, record=records[1], reason="Nhầm học sinh")
    assert not IssuedRecord.objects.exists()


# --- Rate limit ----------------------------------------------------------------------------------


def test_too_many_verifications_from_one_address_are_refused(issued, client, settings):
    settings.HOCBA_VERIFY_RATE_LIMIT = 2
    settings.HOCBA_VERIFY_RATE_WINDOW_SECONDS = 3600
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    url = code_url(issued)
    assert [client.get(url, REMOTE_ADDR=address).status_code for _ in range(3)] == [200, 200, 429]
    assert log_rows()[-1] == ("qr", "refused", "rate_limited")


def test_the_upload_form_works_with_csrf_checks_and_the_address_is_logged_hashed(issued):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.get(reverse("registry:verify"))
    token = browser.cookies["csrftoken"].value
    file = SimpleUploadedFile("record.xml", issued.issued_xml)
    response = browser.post(
        reverse("registry:verify"), {"file": file, "csrfmiddlewaretoken": token}, REMOTE_ADDR="198.51.100.23"
    )
    assert response.status_code == 200
    refused = Client(enforce_csrf_checks=True).post(
        reverse("registry:verify"), {"file": SimpleUploadedFile("r.xml", issued.issued_xml)}
    )
    assert refused.status_code == 403
    (row,) = VerificationLog.objects.all()
    assert row.client_digest and "198.51.100.23" not in row.client_digest
