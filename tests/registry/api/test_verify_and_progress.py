"""Verification of an uploaded record (records:verify) and progress by division and school
(progress:read) through the API."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from portal.models_progress import SchoolProgress
from registry.api.choices import Purpose, Scope
from registry.models_api import ApiCall

VERIFY = "/api/v1/verifications/"
DIVISIONS = "/api/v1/progress/divisions/"
SCHOOLS = "/api/v1/progress/schools/"


def verify(client, partner, data: bytes, name: str = "hoc-ba.xml"):
    return client.post(
        VERIFY, {"file": SimpleUploadedFile(name, data)}, **partner.headers(purpose=Purpose.ADMISSION)
    )


def test_the_issued_xml_verifies_with_its_record_and_signatures(client, partner, issued, school):
    response = verify(client, partner, issued.issued_xml)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["outcome"] == "found" and body["reason"] == ""
    assert body["record"]["record_id"] == issued.record_id and body["record"]["version"] == 1
    assert body["record"]["school"]["code"] == school.code and body["record"]["status"] == "issued"
    assert [s["ok"] for s in body["signatures"]] == [True, True, True]
    call = ApiCall.objects.get()
    assert call.path == "/api/v1/verifications/" and (call.record_id, call.version) == (issued.record_id, 1)
    assert call.personal_id_digest == ""  # nobody was asked about by number


def test_a_changed_byte_is_not_found_and_garbage_is_refused(client, partner, issued):
    changed = issued.issued_xml.replace(b"<", b" <", 1)
    assert verify(client, partner, changed).json()["outcome"] == "not_found"
    response = verify(client, partner, b"not a record", "x.txt")
    assert response.status_code == 200 and response.json()["outcome"] == "refused"
    assert response.json()["record"] is None


def test_a_file_over_the_upload_limit_is_a_413(client, partner, settings, db):
    settings.HOCBA_VERIFY_MAX_UPLOAD_BYTES = 1024
    response = verify(client, partner, b"<x>" + b" " * 200_000 + b"</x>")
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    response = verify(client, partner, b"<x>" + b" " * 2_000 + b"</x>")
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_no_file_is_a_400_and_json_is_a_415(client, partner, db):
    response = client.post(VERIFY, {"other": "x"}, **partner.headers())
    assert response.status_code == 400 and response.json()["code"] == "file_required"
    response = client.post(VERIFY, {"file": "x"}, content_type="application/json", **partner.headers())
    assert response.status_code == 415


def test_verification_needs_records_verify(client, make_partner, issued):
    reader = make_partner(scopes=[Scope.RECORDS_READ, Scope.PROGRESS_READ])
    response = verify(client, reader, issued.issued_xml)
    assert response.status_code == 403 and response.json()["code"] == "scope_missing"


# --- Progress ------------------------------------------------------------------------------------


def test_progress_by_division_and_by_school(client, partner, school, division_a):
    SchoolProgress.objects.update_or_create(
        school=school, school_year="2025-2026", defaults={"students": 40, "records_acknowledged": 10}
    )
    headers = partner.headers(purpose=Purpose.STATISTICS)
    response = client.get(DIVISIONS, {"school_year": "2025-2026"}, **headers)
    assert response.status_code == 200, response.content
    rows = {row["key"]: row for row in response.json()["rows"]}
    assert rows[division_a.code]["counters"]["students"] >= 40
    assert rows["direct"]["kind"] == "direct"

    response = client.get(SCHOOLS, {"school_year": "2025-2026", "division": division_a.code}, **headers)
    assert response.status_code == 200
    (row,) = [r for r in response.json()["rows"] if r["key"] == school.code]
    assert row["counters"]["students"] == 40 and row["completion"] == 0.25
    assert all(r["division_code"] == division_a.code for r in response.json()["rows"])
    # The newest school year by default.
    assert client.get(SCHOOLS, **headers).json()["school_year"] >= "2025-2026"


def test_progress_refuses_bad_input_with_a_400_and_an_unknown_division_with_a_404(client, partner, db):
    headers = partner.headers(purpose=Purpose.STATISTICS)
    for year in ("2025", "2025-2027", "abcd-efgh", "2025-2026x", "٢٠٢٥-٢٠٢٦"):
        response = client.get(DIVISIONS, {"school_year": year}, **headers)
        assert response.status_code == 400, year
        assert response.json()["code"] in {"invalid_input", "invalid_school_year"}
    # A NUL anywhere is refused before routing (portal.security.RefuseNulMiddleware): a 400 too.
    assert client.get(DIVISIONS, {"school_year": "2025-2026\x00"}, **headers).status_code == 400
    response = client.get(SCHOOLS, {"division": "khong-co"}, **headers)
    assert response.status_code == 404 and response.json()["code"] == "division_not_found"


def test_progress_needs_progress_read(client, make_partner, db):
    reader = make_partner(scopes=[Scope.RECORDS_READ, Scope.RECORDS_VERIFY])
    for url in (DIVISIONS, SCHOOLS):
        response = client.get(url, **reader.headers(purpose=Purpose.STATISTICS))
        assert response.status_code == 403 and response.json()["code"] == "scope_missing"
