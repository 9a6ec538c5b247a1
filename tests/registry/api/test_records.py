"""A student's issued records by personal ID, and a version's signed XML and PDF: records:read and
the citizen's consent token, every refusal with its code, every call logged."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from portal.selectors import personal_id_digest
from registry.api.choices import Purpose, Scope
from registry.models_api import ApiCall
from transcripts.records.pdf import year_record_pdf_render

RECORDS = "/api/v1/students/records/"


def xml_url(record) -> str:
    return reverse("api:record_xml", args=[record.record_id, record.version])


def pdf_url(record) -> str:
    return reverse("api:record_pdf", args=[record.record_id, record.version])


def ask(client, partner, personal_id, **headers):
    return client.post(
        RECORDS, {"personal_id": personal_id}, content_type="application/json", **partner.headers(**headers)
    )


def test_a_client_with_records_read_and_the_citizens_consent_gets_the_records(
    client, partner, consent_issuer, make_token, issued, school
):
    token = make_token(partner, issued.personal_id)
    response = ask(client, partner, issued.personal_id, consent=token)

    assert response.status_code == 200, response.content
    (record,) = response.json()["records"]
    assert record["record_id"] == issued.record_id and record["version"] == 1
    assert record["school"] == {"code": school.code, "name": school.name}
    assert record["school_year"] == "2025-2026" and record["status"] == "issued"
    assert record["sha256"] == hashlib.sha256(issued.issued_xml).hexdigest()
    assert record["links"]["xml"].endswith(xml_url(issued))
    assert record["links"]["pdf"].endswith(pdf_url(issued))
    # Logged: the client, purpose, the personal ID's keyed hash (never the number), the token's id.
    call = ApiCall.objects.get()
    assert call.client == partner.client and call.purpose == Purpose.ADMISSION
    assert call.path == "/api/v1/students/records/" and call.status_code == 200 and call.method == "POST"
    assert call.personal_id_digest == personal_id_digest(issued.personal_id)
    assert call.consent_jti and call.key_prefix == partner.key.split("_")[1]


def test_a_person_without_records_gets_an_empty_list(client, partner, consent_issuer, make_token, issued):
    response = ask(client, partner, "079000000001", consent=make_token(partner, "079000000001"))
    assert response.status_code == 200 and response.json() == {"records": []}


def test_without_a_consent_token_the_records_are_refused(client, partner, consent_issuer, issued):
    response = ask(client, partner, issued.personal_id)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "consent_required"
    assert next(iter(body)) == "message" and "X-Consent-Token" in body["message"]
    assert ApiCall.objects.get().status_code == 403 and ApiCall.objects.get().error_code == "consent_required"


def test_a_consent_of_another_person_is_refused(client, partner, consent_issuer, make_token, issued):
    response = ask(client, partner, issued.personal_id, consent=make_token(partner, "079000000001"))
    assert response.status_code == 403 and response.json()["code"] == "consent_subject"


def test_records_read_is_needed_even_with_consent(client, make_partner, consent_issuer, make_token, issued):
    verifier = make_partner(scopes=[Scope.RECORDS_VERIFY, Scope.PROGRESS_READ])
    response = ask(client, verifier, issued.personal_id, consent=make_token(verifier, issued.personal_id))
    assert response.status_code == 403 and response.json()["code"] == "scope_missing"
    response = client.get(
        xml_url(issued), **verifier.headers(consent=make_token(verifier, issued.personal_id))
    )
    assert response.status_code == 403 and response.json()["code"] == "scope_missing"


@pytest.mark.parametrize(
    "personal_id",
    [
        "07900000000",  # 11 digits
        "0790000000011",  # 13
        "07900000000a",
        "０７９０００００００１２",  # full-width digits
        "٠٧٩٠٠٠٠٠٠٠١٢",  # Arabic-Indic digits
        "079 00000 0012",
        "",
        "x" * 5000,
        "079000000012\x00",
    ],
)
def test_a_malformed_personal_id_is_a_400_with_a_message_never_a_500(
    client, partner, consent_issuer, make_token, personal_id
):
    response = ask(client, partner, personal_id, consent=make_token(partner, "079000000012"))
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_personal_id", "invalid_input"}
    assert response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"null",
        b"[]",
        b'"079000000012"',
        b'{"personal_id": 79000000012}',
        b'{"personal_id": null}',
        b"\xff\xfe",
    ],
)
def test_a_body_that_is_not_the_expected_json_is_a_400(client, partner, consent_issuer, body):
    response = client.post(RECORDS, body, content_type="application/json", **partner.headers())
    assert response.status_code == 400
    assert response.json()["code"] in {"malformed_request", "invalid_input", "invalid_personal_id"}


def test_a_body_in_another_format_is_a_415(client, partner):
    response = client.post(RECORDS, "personal_id=1", content_type="text/plain", **partner.headers())
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


# --- The signed XML and the PDF ------------------------------------------------------------------


def test_the_holders_consent_opens_the_signed_xml_as_issued_and_the_copy_is_logged(
    client, partner, consent_issuer, make_token, issued
):
    token = make_token(partner, issued.personal_id)
    response = client.get(xml_url(issued), **partner.headers(consent=token))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml" and response.content == issued.issued_xml
    assert response["X-Record-Status"] == "issued" and "no-store" in response["Cache-Control"]
    call = ApiCall.objects.get()
    assert call.sha256 == hashlib.sha256(issued.issued_xml).hexdigest()
    assert (call.record_id, call.version) == (issued.record_id, 1)
    assert call.personal_id_digest == personal_id_digest(issued.personal_id)
    assert call.path == "/api/v1/records/<str:record_id>/versions/<int:version>/xml/"


def test_the_xml_needs_a_consent_token(client, partner, consent_issuer, issued):
    response = client.get(xml_url(issued), **partner.headers())
    assert response.status_code == 403 and response.json()["code"] == "consent_required"


def test_another_persons_consent_does_not_open_a_record_it_answers_as_if_unknown(
    client, partner, consent_issuer, make_token, issued
):
    response = client.get(xml_url(issued), **partner.headers(consent=make_token(partner, "079000000001")))
    assert response.status_code == 404 and response.json()["code"] == "record_not_found"
    unknown = reverse("api:record_xml", args=["KHONG-CO", 1])
    response = client.get(unknown, **partner.headers(consent=make_token(partner, issued.personal_id)))
    assert response.status_code == 404 and response.json()["code"] == "record_not_found"


def test_a_huge_version_number_is_a_404_not_a_500(client, partner, consent_issuer, make_token, issued):
    url = f"/api/v1/records/{issued.record_id}/versions/99999999999999999999/xml/"
    response = client.get(url, **partner.headers(consent=make_token(partner, issued.personal_id)))
    assert response.status_code == 404


def test_the_pdf_is_a_404_until_rendered_then_handed_out(
    client, partner, consent_issuer, make_token, issued, school
):
    headers = partner.headers(consent=make_token(partner, issued.personal_id))
    response = client.get(pdf_url(issued), **headers)
    assert response.status_code == 404 and response.json()["code"] == "document_not_ready"

    with school:
        year_record_pdf_render(record_id=issued.pk)
    response = client.get(pdf_url(issued), **headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert ApiCall.objects.filter(sha256=hashlib.sha256(response.content).hexdigest()).count() == 1


def test_a_huge_json_body_is_a_413_before_it_is_read(client, partner, consent_issuer):
    body = '{"personal_id": "079000000012", "padding": "' + "x" * 200_000 + '"}'
    response = client.post(RECORDS, body, content_type="application/json", **partner.headers())
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_the_list_takes_a_fixed_number_of_queries(
    client, partner, consent_issuer, make_token, issued, django_assert_num_queries
):
    token = make_token(partner, issued.personal_id)
    # The key (with its client), the consent issuer, the records (with their schools), the log row;
    # after one SET search_path to public (the fixtures left the connection on the school's schema).
    with django_assert_num_queries(5):
        response = ask(client, partner, issued.personal_id, consent=token)
    assert response.status_code == 200 and len(response.json()["records"]) == 1
