"""Enumeration of the public record page (issue 9, finding 7).

Record ids are sequential (thcs-lqd.THCS-LQD-6A1-03.2025-2026/v1, -04, ...): knowing one, anyone can
guess the next. The public page shows a record only with its verification code (80 random bits,
printed on the PDF and in its QR code) or with the document itself uploaded. Without the right
code, the answer is the same whether the id exists or not: the same status, the same page, so
guessing ids confirms nothing.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext, override

from portal.choices import VERIFICATION_CODE_ALPHABET, VERIFICATION_CODE_LENGTH
from portal.index import verification_code_matches, verification_code_new
from portal.models import IssuedRecord, VerificationLog
from tests.portal.test_verification import log_rows, qr_url, said, upload
from tests.signing_kit import issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401
from transcripts.document import year_record_parse
from transcripts.records.services import year_record_document

ASK_FOR_CODE = "Enter the verification code printed on the transcript, under its QR code, to see this record."
NO_MATCH = "No issued year record has this id, version and verification code."
UPLOAD_NO_MATCH = (
    "This file is not an issued year record: no record was issued with exactly these contents "
    "(it may have been changed since it was issued)."
)
WRONG_CODE = "0000-0000-0000-0000"


@pytest.fixture(autouse=True)
def _generous_rate_limit(settings):
    settings.HOCBA_VERIFY_RATE_LIMIT = 100_000


@pytest.fixture
def issued(homeroom_teacher, principal, school, records):  # noqa: F811 -- records is imported above
    """A record of the test school, issued (signed and sealed); its sealed XML as `issued_xml`."""
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    record.issued_xml = year_record_document(record)
    connection.set_schema_to_public()
    return record


def entry_of(record) -> IssuedRecord:
    return IssuedRecord.objects.get(record_id=record.record_id, version=record.version)


def invented_id(record_id: str) -> str:
    """An id of the same shape that no record has: another student number of the same class."""
    invented = re.sub(r"(\d+)(\.\d{4}-\d{4})$", lambda m: "9" * len(m[1]) + m[2], record_id)
    assert invented != record_id and not IssuedRecord.objects.filter(record_id=invented).exists()
    return invented


def page_of(response, *variables: str) -> str:
    """The page as a guesser compares it: the id typed in and the form's CSRF token left out."""
    text = response.content.decode()
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken"', text)
    for value in variables:
        text = text.replace(escape(value), "…").replace(value, "…")
    return text


def shows_nothing_personal(response, record) -> None:
    page = response.content.decode()
    document = year_record_parse(record.issued_xml)
    assert document.student.full_name not in page
    assert escape(document.student.full_name) not in page
    assert hashlib.sha256(record.issued_xml).hexdigest() not in page
    assert "Ngô Chủ Nhiệm" not in page and "Đặng Hiệu Trưởng" not in page  # the signers
    for row in document.part.subjects:
        for score in (row.term1, row.term2, row.year):
            if score:
                assert f"<td>{score}</td>" not in page
    assert not said(response, "Current: this version was issued by the school and is in force.")


# --- A bare id --------------------------------------------------------------------------------


def test_a_bare_record_id_shows_no_name_and_no_score(issued, client):
    response = client.get(qr_url(issued.record_id, 1))

    assert response.status_code == 200
    assert said(response, ASK_FOR_CODE)
    shows_nothing_personal(response, issued)
    assert log_rows() == [("qr", "refused", "code_required")]
    assert VerificationLog.objects.get().issued_record is None


def test_a_bare_id_gets_the_same_answer_for_a_real_record_and_an_invented_one(issued, client):
    fake = invented_id(issued.record_id)
    for url_of in (
        lambda record_id: qr_url(record_id, 1),
        lambda record_id: reverse("registry:verify") + f"?record_id={record_id}&version=1",
    ):
        real, invented = client.get(url_of(issued.record_id)), client.get(url_of(fake))
        assert real.status_code == invented.status_code == 200
        assert page_of(real, issued.record_id) == page_of(invented, fake)
        shows_nothing_personal(real, issued)


# --- A wrong code -----------------------------------------------------------------------------


def test_a_wrong_code_gives_the_same_answer_as_an_invented_id(issued, client):
    fake = invented_id(issued.record_id)
    real_code = entry_of(issued).verification_code_display
    almost = real_code[:-1] + ("0" if real_code[-1] != "0" else "1")  # one symbol off
    # A wrong code, one symbol off, no code at all, and a code that is right for another record.
    for code, elsewhere in (
        (WRONG_CODE, WRONG_CODE),
        (almost, almost),
        ("not a code", "not a code"),
        (WRONG_CODE, real_code),
    ):
        wrong = client.get(qr_url(issued.record_id, 1), {"code": code})
        invented = client.get(qr_url(fake, 1), {"code": elsewhere})
        assert wrong.status_code == invented.status_code == 404
        assert said(wrong, NO_MATCH)
        assert page_of(wrong, issued.record_id, code) == page_of(invented, fake, elsewhere)
        shows_nothing_personal(wrong, issued)
    # Typed in the form: the same.
    typed = {"version": 1, "code": almost}
    wrong = client.get(reverse("registry:verify"), {"record_id": issued.record_id, **typed})
    invented = client.get(reverse("registry:verify"), {"record_id": fake, **typed})
    assert wrong.status_code == invented.status_code == 404
    assert page_of(wrong, issued.record_id) == page_of(invented, fake)
    # The log (not public) tells them apart, for whoever watches for guessing.
    reasons = [reason for _method, _outcome, reason in log_rows()]
    assert reasons.count("wrong_code") == 5 and reasons.count("not_found") == 5


def test_an_uploaded_file_with_a_guessed_id_does_not_say_whether_the_id_exists(issued, client):
    fake = invented_id(issued.record_id)
    changed = issued.issued_xml.replace(b"</hocba>", b"<!-- changed --></hocba>")
    assert changed != issued.issued_xml
    guessed = issued.issued_xml.replace(issued.record_id.encode(), fake.encode())

    real, invented = upload(client, "a.xml", changed), upload(client, "b.xml", guessed)

    assert real.status_code == invented.status_code == 404
    assert said(real, UPLOAD_NO_MATCH) and said(invented, UPLOAD_NO_MATCH)
    assert page_of(real, issued.record_id) == page_of(invented, fake)
    shows_nothing_personal(real, issued)
    assert log_rows() == [("upload_xml", "not_found", "mismatch"), ("upload_xml", "not_found", "not_found")]


# --- The right code, or the document ----------------------------------------------------------


def test_the_right_code_shows_the_record(issued, client):
    entry = entry_of(issued)
    name = year_record_parse(issued.issued_xml).student.full_name

    by_link = client.get(entry.get_absolute_url())
    assert by_link.status_code == 200 and name in by_link.content.decode()
    assert said(by_link, "Current: this version was issued by the school and is in force.")
    # Typed from paper: lower case, without dashes, O for 0 and l for 1, spaces around.
    typed = entry.verification_code.lower().replace("0", "o").replace("1", "l")
    by_form = client.get(
        reverse("registry:verify"), {"record_id": issued.record_id, "version": 1, "code": f"  {typed} "}
    )
    assert by_form.status_code == 200 and name in by_form.content.decode()
    assert log_rows() == [("qr", "found", ""), ("record_id", "found", "")]
    # The page with the record is not kept by shared caches or the browser's history cache.
    assert "no-store" in by_link["Cache-Control"]


def test_the_uploaded_sealed_xml_shows_the_record(issued, client):
    response = upload(client, "record.xml", issued.issued_xml)

    assert response.status_code == 200
    assert year_record_parse(issued.issued_xml).student.full_name in response.content.decode()
    assert log_rows() == [("upload_xml", "found", "")]


def test_the_schools_book_page_links_to_the_record_with_its_code(
    issued, client_as, principal, school, client
):
    entry = entry_of(issued)
    student = issued.enrolment.student

    page = client_as(principal).get(f"/truong/{school.code}/hoc-ba/{student.pk}/")

    assert page.status_code == 200
    assert escape(entry.get_absolute_url()) in page.content.decode()
    assert entry.verification_code_display in page.content.decode()
    client.logout()
    opened = client.get(entry.get_absolute_url())  # followed by anyone it is given to
    assert opened.status_code == 200 and student.full_name in opened.content.decode()


# --- The code ---------------------------------------------------------------------------------


def test_the_code_has_at_least_80_bits_and_is_unique_in_the_database(issued):
    entry = entry_of(issued)
    bits = VERIFICATION_CODE_LENGTH * math.log2(len(VERIFICATION_CODE_ALPHABET))
    assert bits >= 80 and len(set(VERIFICATION_CODE_ALPHABET)) == 32
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", entry.verification_code_display)
    # Not derived from the id: random, each symbol of the alphabet turns up, no two alike.
    codes = {verification_code_new() for _ in range(2000)}
    assert len(codes) == 2000 and set("".join(codes)) == set(VERIFICATION_CODE_ALPHABET)
    assert entry.record_id not in entry.verification_code
    # The database refuses a second record with the same code, and a code of another shape.
    twin = {
        f.attname: getattr(entry, f.attname) for f in IssuedRecord._meta.concrete_fields if not f.primary_key
    }
    with pytest.raises(IntegrityError, match="issued_record_verification_code_unique"), transaction.atomic():
        IssuedRecord.objects.create(**{**twin, "version": 7})
    for bad in ("", "0000-0000-000000", "IIIIOOOOLLLLUUUU", "abcdefghjkmnpqrs"):
        with (
            pytest.raises(IntegrityError, match="issued_record_verification_code_format"),
            transaction.atomic(),
        ):
            IssuedRecord.objects.create(**{**twin, "version": 8, "verification_code": bad})


def test_codes_are_read_as_a_person_types_them_and_nothing_else_matches():
    code = verification_code_new()
    grouped = "-".join(code[i : i + 4] for i in range(0, 16, 4))
    for typed in (
        code,
        grouped,
        grouped.lower(),
        f" {grouped} ",
        grouped.replace("-", " "),
        grouped.replace("-", "‐"),
    ):
        assert verification_code_matches(code, typed), typed
    for typed in (
        "",
        code[:-1],
        code + "0",
        code[1:] + code[0],
        "ＡＢ" + code[2:],
        code[:8] + "\x00" + code[9:],
    ):
        assert not verification_code_matches(code, typed), typed


def test_issued_records_of_before_the_codes_get_one_from_the_data_migration(issued):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("portal.migrations.0012_issued_record_verification_code")
    entry = entry_of(issued)
    with connection.cursor() as cursor:  # the column as it was before the migration (rolled back after)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the issue's deferred checks, done now
        cursor.execute("ALTER TABLE portal_issuedrecord ALTER COLUMN verification_code DROP NOT NULL")
        cursor.execute("UPDATE portal_issuedrecord SET verification_code = NULL WHERE id = %s", [entry.pk])

    migration.codes_for_issued_records(apps, None)

    entry.refresh_from_db()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{16}", entry.verification_code)
    assert not IssuedRecord.objects.filter(verification_code=None).exists()


# --- Rate limits ------------------------------------------------------------------------------


def test_wrong_codes_are_counted_per_address_and_then_refused(issued, client, settings):
    settings.HOCBA_VERIFY_WRONG_CODE_LIMIT = 3
    settings.HOCBA_VERIFY_WRONG_CODE_WINDOW_SECONDS = 3600
    guesser = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    fake = invented_id(issued.record_id)
    right = entry_of(issued).get_absolute_url()

    answers = [
        client.get(qr_url(record_id, 1), {"code": WRONG_CODE}, REMOTE_ADDR=guesser).status_code
        for record_id in (issued.record_id, fake, issued.record_id)
    ]
    assert answers == [404, 404, 404]
    refused = client.get(right, REMOTE_ADDR=guesser)  # even the right code, from this address, now
    assert refused.status_code == 429
    assert said(refused, "Too many wrong verification codes from your address. Please try again later.")
    shows_nothing_personal(refused, issued)
    assert log_rows()[-1] == ("qr", "refused", "wrong_codes")
    # A bare id is no guess: it is not counted. Another address is not affected.
    assert client.get(qr_url(fake, 1), REMOTE_ADDR="198.51.100.77").status_code == 200
    assert client.get(right, REMOTE_ADDR="198.51.100.77").status_code == 200
    # The document itself still verifies from the guesser's address.
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload_answer = client.post(
        reverse("registry:verify"),
        {"file": SimpleUploadedFile("r.xml", issued.issued_xml)},
        REMOTE_ADDR=guesser,
    )
    assert upload_answer.status_code == 200


def test_the_general_rate_limit_still_applies_to_every_verification(issued, client, settings):
    settings.HOCBA_VERIFY_RATE_LIMIT = 2
    settings.HOCBA_VERIFY_RATE_WINDOW_SECONDS = 3600
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    url = entry_of(issued).get_absolute_url()
    assert [client.get(url, REMOTE_ADDR=address).status_code for _ in range(3)] == [200, 200, 429]
    with override("vi"):
        assert escape(gettext("Too many verifications from your address. Please try again in a minute.")) in (
            client.get(qr_url(issued.record_id, 1), REMOTE_ADDR=address).content.decode()
        )


def test_hostile_ids_and_codes_get_a_clear_answer_not_a_500(issued, client):
    started = time.monotonic()
    for record_id, code in (
        (issued.record_id + "\x00", WRONG_CODE),
        (issued.record_id, "\x00" * 16),
        ("x" * 500, WRONG_CODE),
        (issued.record_id, "K" * 5000),
    ):
        response = client.get(
            reverse("registry:verify"), {"record_id": record_id, "version": 1, "code": code}
        )
        assert response.status_code in (400, 404), (record_id[:20], code[:20])
        shows_nothing_personal(response, issued)
    assert time.monotonic() - started < 5
