"""Every call logged (append-only), throttled per client in Redis (429 with Retry-After), unknown
addresses answered in JSON."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from registry.api.choices import Purpose
from registry.api.services import partner_key_issue
from registry.models_api import ApiCall

PROGRESS = "/api/v1/progress/divisions/"


def test_every_call_is_logged_whatever_its_outcome(client, partner):
    client.get(PROGRESS, **partner.headers(purpose=Purpose.STATISTICS))
    client.get(PROGRESS, **partner.headers(purpose=Purpose.TRANSFER))
    client.get(PROGRESS, HTTP_AUTHORIZATION="Bearer nope")
    rows = list(
        ApiCall.objects.order_by("pk").values_list("client", "purpose", "status_code", "error_code", "path")
    )
    assert rows == [
        (partner.client.pk, "statistics", 200, "", "/api/v1/progress/divisions/"),
        (partner.client.pk, "transfer", 403, "purpose_not_allowed", "/api/v1/progress/divisions/"),
        (None, "", 401, "invalid_key", "/api/v1/progress/divisions/"),
    ]
    assert all(d >= 0 for d in ApiCall.objects.values_list("duration_ms", flat=True))


def test_the_call_log_is_append_only(client, partner):
    client.get(PROGRESS, **partner.headers(purpose=Purpose.STATISTICS))
    call = ApiCall.objects.get()
    for statement in (
        "UPDATE registry_apicall SET status_code = 200 WHERE id = %s",
        "DELETE FROM registry_apicall WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [call.pk])
    assert ApiCall.objects.filter(pk=call.pk, status_code=call.status_code).exists()


def test_a_client_over_its_rate_gets_a_429_with_retry_after_and_all_its_keys_share_it(
    client, make_partner, department_admin
):
    slow = make_partner(rate="3/min")
    headers = slow.headers(purpose=Purpose.STATISTICS)
    assert [client.get(PROGRESS, **headers).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(PROGRESS, **headers)
    assert response.status_code == 429 and response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # A second key of the same client spends the same budget.
    second = partner_key_issue(actor=department_admin, client=slow.client)
    assert (
        client.get(PROGRESS, **{**headers, "HTTP_AUTHORIZATION": f"Bearer {second.secret}"}).status_code
        == 429
    )
    # Another client is not held back.
    other = make_partner(name="Khác", rate="3/min")
    assert client.get(PROGRESS, **other.headers(purpose=Purpose.STATISTICS)).status_code == 200
    assert ApiCall.objects.filter(client=slow.client, status_code=429).count() == 2


def test_an_unknown_address_under_api_is_a_json_404(client, db):
    response = client.get("/api/v2/anything/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_errors_are_json_with_the_vietnamese_message_first(client, db):
    response = client.get(PROGRESS)
    body = response.json()
    assert list(body)[:3] == ["message", "code", "message_en"]
    assert body["message"] != body["message_en"]  # translated
    assert "Authorization: Bearer" in body["message_en"]


def test_a_nul_character_anywhere_is_a_json_400_for_the_api(client, partner):
    headers = partner.headers(purpose=Purpose.STATISTICS)
    for url in (PROGRESS + "?school_year=2025%00", "/api/v1/records/A%00B/versions/1/xml/"):
        response = client.get(url, **headers)
        assert response.status_code == 400 and response.json()["code"] == "nul_character", url
        assert response.json()["message"] != response.json()["message_en"]
