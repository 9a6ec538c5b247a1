"""Fixtures of the partner API's tests: partners with keys, a consent issuer with its keys, consent
tokens, an issued record and its holder, and a test client that speaks to /api/v1/.

Partners, issuers and keys are made through registry.api.services by the department administrator,
as the admin site makes them; records are issued as tests/portal/test_verification.py issues them.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.db import connection

from registry.api.choices import ConsentAlgorithm, PartnerKind, Purpose, Scope
from registry.api.services import consent_issuer_register, partner_client_register, partner_key_issue
from tests.signing_kit import issue
from transcripts.records.services import year_record_document

ALL_SCOPES = [Scope.RECORDS_READ, Scope.RECORDS_VERIFY, Scope.PROGRESS_READ]
ISSUER = "https://vneid.example.gov.vn"


def _pem(public_key) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@pytest.fixture(scope="session")
def consent_private_key():
    """The consent issuer's ES256 key (made once for the session)."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def stranger_private_key():
    """Another ES256 key: signs tokens no registered issuer made."""
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed25519_private_key():
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def consent_issuer(department_admin, consent_private_key):
    return consent_issuer_register(
        actor=department_admin,
        name="Ứng dụng định danh (thử)",
        issuer=ISSUER,
        algorithm=ConsentAlgorithm.ES256,
        public_key=_pem(consent_private_key.public_key()),
    )


@dataclass
class Partner:
    """A registered client and its key (the whole key, as handed to the partner)."""

    client: Any
    key: str

    def headers(self, *, purpose: str = Purpose.ADMISSION, consent: str | None = None, **extra: str) -> dict:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.key}", "HTTP_X_PURPOSE": purpose, **extra}
        if consent is not None:
            headers["HTTP_X_CONSENT_TOKEN"] = consent
        return headers


@pytest.fixture
def make_partner(department_admin):
    """make_partner(scopes=[...], purposes=[...], rate=...) -> a Partner with one fresh key."""

    def make(
        *,
        name: str = "Cổng dịch vụ công (thử)",
        kind: str = PartnerKind.PUBLIC_SERVICE_PORTAL,
        scopes=None,
        purposes=None,
        rate: str = "1000/min",
    ) -> Partner:
        client = partner_client_register(
            actor=department_admin,
            name=name,
            kind=kind,
            scopes=list(ALL_SCOPES if scopes is None else scopes),
            purposes=list([Purpose.ADMISSION, Purpose.STATISTICS] if purposes is None else purposes),
            throttle_rate=rate,
            active=True,
        )
        issued = partner_key_issue(actor=department_admin, client=client)
        return Partner(client=client, key=issued.secret)

    return make


@pytest.fixture
def partner(make_partner) -> Partner:
    """A client holding every scope, allowed admission and statistics."""
    return make_partner()


@pytest.fixture
def make_token(consent_private_key):
    """make_token(partner_or_client, personal_id, **overrides) -> a signed consent token (ES256)."""

    def make(
        client,
        personal_id: str,
        *,
        key=None,
        algorithm: str = "ES256",
        headers: dict | None = None,
        **claims: Any,
    ) -> str:
        client = getattr(client, "client", client)
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": personal_id,
            "aud": str(client.identifier),
            "scope": "records:read",
            "purpose": Purpose.ADMISSION,
            "iat": now,
            "exp": now + int(dt.timedelta(days=1).total_seconds()),
            "jti": str(uuid.uuid4()),
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key or consent_private_key, algorithm=algorithm, headers=headers)

    return make


@pytest.fixture
def issued(homeroom_teacher, principal, school, records):
    """The first record, issued (confirmed, signed, sealed); .issued_xml and .personal_id set."""
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    record.issued_xml = year_record_document(record)
    record.personal_id = record.enrolment.student.personal_id
    connection.set_schema_to_public()
    return record


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """The throttle counters live in Redis: each test starts with none of an earlier one's."""
    from django.core.cache import cache

    client = cache._cache.get_client()
    stale = list(client.scan_iter(match=f"{cache.make_key('')}throttle_*", count=1000))
    stale += list(client.scan_iter(match=f"{cache.make_key('')}api-throttle:*", count=1000))
    if stale:
        client.delete(*stale)
    yield
