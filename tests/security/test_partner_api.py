# ruff: noqa: F811 -- the fixtures imported from tests/registry/api/conftest.py are test parameters
"""The partner API attacked: keys that should not open it, consent tokens that should not pass.

Keys: none, malformed, unknown, another's secret under a real prefix, revoked, rotated past its
grace, of a deactivated client. Tokens: for another person, for another client, expired, too long
lived, from an unregistered or deactivated issuer, signed by a stranger's key, alg=none, HS256
keyed with the issuer's public key (the classic confusion), EdDSA from an ES256 issuer, another
purpose or scope, garbage. And the secret of a key is nowhere in the database.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection
from django.utils import timezone

from registry.api.choices import Purpose
from registry.api.services import (
    consent_issuer_update,
    partner_client_update,
    partner_key_issue,
    partner_key_revoke,
)
from registry.models_api import ApiCall, PartnerKey
from tests.registry.api.conftest import (  # noqa: F401 -- fixtures used below
    ISSUER,
    _fresh_throttles,
    consent_issuer,
    consent_private_key,
    ed25519_private_key,
    issued,
    make_partner,
    make_token,
    partner,
    stranger_private_key,
)
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401

RECORDS = "/api/v1/students/records/"
PROGRESS = "/api/v1/progress/divisions/"


def ask(client, partner, personal_id, token=None, *, key=None, purpose=Purpose.ADMISSION):
    headers = partner.headers(consent=token, purpose=purpose)
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.post(RECORDS, {"personal_id": personal_id}, content_type="application/json", **headers)


# --- Keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer hbk_",
        "Basic dXNlcjpwYXNz",
        "Bearer hbk_aaaaaaaa_" + "A" * 43,  # well-formed, unknown
        "Bearer " + "x" * 10_000,
        "Bearer hbk_aaaaaaaa_" + "A" * 42 + "\u00e9",
    ],
)
def test_no_key_or_an_unknown_one_is_a_401_with_a_json_reason(client, db, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization, "HTTP_X_PURPOSE": "statistics"} if authorization else {}
    response = client.get(PROGRESS, **headers)
    assert response.status_code == 401
    assert response.json()["code"] in {"key_required", "invalid_key"} and response.json()["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    call = ApiCall.objects.get()
    assert call.client is None and call.status_code == 401


def test_the_right_prefix_with_another_secret_is_refused(client, partner):
    prefix = partner.key.split("_")[1]
    response = client.get(
        PROGRESS, HTTP_AUTHORIZATION=f"Bearer hbk_{prefix}_" + "B" * 43, HTTP_X_PURPOSE="statistics"
    )
    assert response.status_code == 401 and response.json()["code"] == "invalid_key"
    assert ApiCall.objects.get().key_prefix == prefix


def test_a_revoked_key_is_refused_from_the_next_call(client, partner, department_admin):
    assert client.get(PROGRESS, **partner.headers(purpose="statistics")).status_code == 200
    partner_key_revoke(actor=department_admin, key=PartnerKey.objects.get(client=partner.client))
    response = client.get(PROGRESS, **partner.headers(purpose="statistics"))
    assert response.status_code == 401 and response.json()["code"] == "invalid_key"
    # The log says whose revoked key is still in use.
    refused = ApiCall.objects.get(status_code=401)
    assert refused.client == partner.client and refused.key_prefix == partner.key.split("_")[1]


def test_a_rotated_key_works_during_its_grace_period_and_not_after(client, partner, department_admin):
    new = partner_key_issue(actor=department_admin, client=partner.client, grace=dt.timedelta(hours=2))
    old = PartnerKey.objects.get(client=partner.client, revoked_at__isnull=True, expires_at__isnull=False)
    assert old.expires_at > timezone.now()
    assert client.get(PROGRESS, **partner.headers(purpose="statistics")).status_code == 200
    headers = {**partner.headers(purpose="statistics"), "HTTP_AUTHORIZATION": f"Bearer {new.secret}"}
    assert client.get(PROGRESS, **headers).status_code == 200

    # The grace period is over (as if two hours had passed).
    PartnerKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(PROGRESS, **partner.headers(purpose="statistics"))
    assert response.status_code == 401 and response.json()["code"] == "invalid_key"
    assert client.get(PROGRESS, **headers).status_code == 200


def test_a_rotation_that_revokes_at_once_leaves_only_the_new_key(client, partner, department_admin):
    new = partner_key_issue(actor=department_admin, client=partner.client, revoke_others=True)
    assert client.get(PROGRESS, **partner.headers(purpose="statistics")).status_code == 401
    headers = {**partner.headers(purpose="statistics"), "HTTP_AUTHORIZATION": f"Bearer {new.secret}"}
    assert client.get(PROGRESS, **headers).status_code == 200


def test_a_deactivated_client_is_refused(client, partner, department_admin):
    partner_client_update(actor=department_admin, client=partner.client, active=False)
    assert client.get(PROGRESS, **partner.headers(purpose="statistics")).status_code == 401


def test_a_client_cannot_use_a_purpose_it_was_not_allowed(client, partner):
    response = client.get(PROGRESS, **partner.headers(purpose=Purpose.TRANSFER))
    assert response.status_code == 403 and response.json()["code"] == "purpose_not_allowed"
    response = client.get(PROGRESS, **partner.headers(purpose="anything"))
    assert response.status_code == 403 and response.json()["code"] == "purpose_not_allowed"
    headers = partner.headers()
    del headers["HTTP_X_PURPOSE"]
    response = client.get(PROGRESS, **headers)
    assert response.status_code == 400 and response.json()["code"] == "purpose_required"
    # The purpose may also be a parameter.
    assert client.get(PROGRESS + "?purpose=statistics", **headers).status_code == 200


def test_the_secret_of_a_key_is_nowhere_in_the_database(client, partner, department_admin):
    client.get(PROGRESS, **partner.headers(purpose="statistics"))
    secret = partner.key.split("_", 2)[2]
    key = PartnerKey.objects.get(client=partner.client)
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        for table in (
            "registry_partnerkey",
            "registry_partnerclient",
            "registry_apicall",
            "portal_auditentry",
        ):
            cursor.execute(f"SELECT coalesce(string_agg(row_to_json(t)::text, ' '), '') FROM {table} t")  # noqa: S608
            (dump,) = cursor.fetchone()
            assert secret not in dump and partner.key not in dump, table


# --- Consent tokens ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(partner, personal_id: str, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": personal_id,
        "aud": str(partner.client.identifier),
        "scope": "records:read",
        "purpose": "admission",
        "iat": now,
        "exp": now + 3600,
        "jti": "t-1",
    }
    claims.update(overrides)
    return claims


def test_a_token_made_for_another_client_is_refused(
    client, partner, make_partner, consent_issuer, make_token, issued
):
    other = make_partner(name="Cổng tỉnh khác")
    response = ask(client, partner, issued.personal_id, make_token(other, issued.personal_id))
    assert response.status_code == 403 and response.json()["code"] == "consent_audience"


def test_a_token_for_several_clients_is_refused(
    client, partner, make_partner, consent_issuer, make_token, issued
):
    other = make_partner(name="Cổng tỉnh khác")
    audiences = [str(partner.client.identifier), str(other.client.identifier)]
    response = ask(
        client, partner, issued.personal_id, make_token(partner, issued.personal_id, aud=audiences)
    )
    assert response.status_code == 403 and response.json()["code"] == "consent_audience"


def test_a_token_for_another_person_is_refused(client, partner, consent_issuer, make_token, issued):
    response = ask(client, partner, issued.personal_id, make_token(partner, "001099000001"))
    assert response.status_code == 403 and response.json()["code"] == "consent_subject"


def test_an_expired_token_is_refused(client, partner, consent_issuer, make_token, issued):
    now = int(time.time())
    token = make_token(partner, issued.personal_id, iat=now - 7200, exp=now - 3600)
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"] == "consent_expired"


def test_a_token_living_longer_than_allowed_is_refused(client, partner, consent_issuer, make_token, issued):
    now = int(time.time())
    token = make_token(partner, issued.personal_id, exp=now + 31 * 24 * 3600)
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"] == "consent_lifetime"


def test_a_token_issued_in_the_future_is_refused(client, partner, consent_issuer, make_token, issued):
    now = int(time.time())
    token = make_token(partner, issued.personal_id, iat=now + 3600, exp=now + 7200)
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"] == "consent_not_yet_valid"


def test_a_token_of_an_unregistered_issuer_is_refused(client, partner, consent_issuer, make_token, issued):
    token = make_token(partner, issued.personal_id, iss="https://gia-mao.example")
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"] == "consent_issuer"


def test_a_token_of_a_deactivated_issuer_is_refused(
    client, partner, consent_issuer, make_token, issued, department_admin
):
    consent_issuer_update(actor=department_admin, issuer=consent_issuer, active=False)
    response = ask(client, partner, issued.personal_id, make_token(partner, issued.personal_id))
    assert response.status_code == 403 and response.json()["code"] == "consent_issuer"


def test_a_token_signed_by_another_key_is_refused(
    client, partner, consent_issuer, make_token, issued, stranger_private_key
):
    token = make_token(partner, issued.personal_id, key=stranger_private_key)
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"] == "consent_signature"


def test_an_unsigned_token_alg_none_is_refused(client, partner, consent_issuer, issued):
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(partner, issued.personal_id)).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}"):
        response = ask(client, partner, issued.personal_id, token)
        assert response.status_code == 403
        assert response.json()["code"] in {"consent_algorithm", "consent_invalid"}


def test_hs256_keyed_with_the_issuers_public_key_is_refused(
    client, partner, consent_issuer, issued, consent_private_key
):
    """The algorithm-confusion attack: the public key (known to all) used as an HMAC secret."""
    pem = consent_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(partner, issued.personal_id)).encode())
    signature = _b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    response = ask(client, partner, issued.personal_id, f"{header}.{body}.{signature}")
    assert response.status_code == 403 and response.json()["code"] == "consent_algorithm"


def test_eddsa_from_an_issuer_registered_for_es256_is_refused(
    client, partner, consent_issuer, make_token, issued, ed25519_private_key
):
    token = make_token(partner, issued.personal_id, key=ed25519_private_key, algorithm="EdDSA")
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"] == "consent_algorithm"


def test_a_token_for_another_purpose_or_scope_is_refused(client, partner, consent_issuer, make_token, issued):
    response = ask(
        client, partner, issued.personal_id, make_token(partner, issued.personal_id, purpose="statistics")
    )
    assert response.status_code == 403 and response.json()["code"] == "consent_purpose"
    response = ask(
        client, partner, issued.personal_id, make_token(partner, issued.personal_id, scope="progress:read")
    )
    assert response.status_code == 403 and response.json()["code"] == "consent_scope"


@pytest.mark.parametrize("missing", ["jti", "exp", "iat", "sub", "aud"])
def test_a_token_missing_a_required_claim_is_refused(
    client, partner, consent_issuer, make_token, issued, missing
):
    token = make_token(partner, issued.personal_id, **{missing: None})
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403
    assert response.json()["code"] in {"consent_invalid", "consent_audience", "consent_subject"}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "e30.e30.", "x" * 9000, "..", "\u00e9.\u00e9.\u00e9"])
def test_garbage_tokens_are_a_403_never_a_500(client, partner, consent_issuer, issued, token):
    response = ask(client, partner, issued.personal_id, token)
    assert response.status_code == 403 and response.json()["code"].startswith("consent_")


def test_a_valid_token_logs_its_jti_and_a_refused_one_too(
    client, partner, consent_issuer, make_token, issued
):
    ask(client, partner, issued.personal_id, make_token(partner, issued.personal_id, jti="ok-1"))
    ask(client, partner, issued.personal_id, make_token(partner, "001099000001", jti="wrong-person-1"))
    assert list(ApiCall.objects.order_by("pk").values_list("consent_jti", "status_code")) == [
        ("ok-1", 200),
        ("wrong-person-1", 403),
    ]
