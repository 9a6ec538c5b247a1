"""The partner API in the admin site: the department administrator only; writes through the
services (audited); a key shown once, on the page the action answers with."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from portal.choices import AuditAction
from portal.models import AuditEntry
from registry.api.services import key_digest
from registry.models_api import ConsentIssuer, PartnerClient, PartnerKey

CLIENTS = "/admin/registry/partnerclient/"


def test_the_department_administrator_registers_a_partner_and_it_is_audited(client_as, department_admin):
    client = client_as(department_admin)
    assert client.get(CLIENTS).status_code == 200
    response = client.post(
        CLIENTS + "add/",
        {
            "name": "Cổng Dịch vụ công quốc gia",
            "kind": "public_service_portal",
            "scopes": ["records:read", "records:verify"],
            "purposes": ["admission", "public_service"],
            "throttle_rate": "120/min",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    partner = PartnerClient.objects.get()
    assert partner.scopes == ["records:read", "records:verify"] and partner.throttle_rate == "120/min"
    entry = AuditEntry.objects.get(action=AuditAction.PARTNER_CLIENT_REGISTERED)
    assert entry.actor == department_admin and entry.object_id == str(partner.pk)

    client.post(
        CLIENTS + f"{partner.pk}/change/",
        {
            "name": partner.name,
            "kind": partner.kind,
            "scopes": ["records:verify"],
            "purposes": ["admission"],
            "throttle_rate": "120/min",
            "active": "on",
        },
    )
    changed = AuditEntry.objects.get(action=AuditAction.PARTNER_CLIENT_CHANGED)
    assert changed.changes["scopes"] == {"old": ["records:read", "records:verify"], "new": ["records:verify"]}


def test_a_bad_throttle_rate_is_refused_by_the_form(client_as, department_admin):
    response = client_as(department_admin).post(
        CLIENTS + "add/",
        {
            "name": "X",
            "kind": "citizen_app",
            "scopes": [],
            "purposes": [],
            "throttle_rate": "many",
            "active": "on",
        },
    )
    assert response.status_code == 200 and not PartnerClient.objects.exists()


def test_issuing_a_key_shows_it_once_and_stores_only_its_hash(client_as, department_admin, partner):
    client = client_as(department_admin)
    response = client.post(
        CLIENTS, {"action": "issue_key_with_grace", "_selected_action": [partner.client.pk]}
    )
    assert response.status_code == 200
    page = response.content.decode()
    new = PartnerKey.objects.filter(client=partner.client).order_by("-pk").first()
    assert f"hbk_{new.prefix}_" in page
    shown = page.split(f"hbk_{new.prefix}_", 1)[1][:43]
    assert new.digest == key_digest(shown)
    assert "no-store" in response["Cache-Control"]
    # The old key is now in its grace period; the issue is audited.
    old = PartnerKey.objects.get(client=partner.client, pk__lt=new.pk)
    assert old.expires_at is not None and old.revoked_at is None
    assert AuditEntry.objects.filter(action=AuditAction.PARTNER_KEY_ISSUED).count() == 2
    # Never shown again: the client's page and the keys' list have no secret.
    for url in (CLIENTS + f"{partner.client.pk}/change/", "/admin/registry/partnerkey/"):
        assert shown not in client.get(url).content.decode()


def test_a_key_revoked_in_the_admin_is_audited(client_as, department_admin, partner):
    key = PartnerKey.objects.get(client=partner.client)
    client_as(department_admin).post(
        "/admin/registry/partnerkey/", {"action": "revoke_selected", "_selected_action": [key.pk]}
    )
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == department_admin
    assert AuditEntry.objects.filter(action=AuditAction.PARTNER_KEY_REVOKED, object_id=str(key.pk)).exists()


def _pem(key) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_a_consent_issuer_is_registered_with_a_key_that_fits_its_algorithm(client_as, department_admin):
    client = client_as(department_admin)
    data = {"name": "VNeID (thử)", "issuer": "https://id.example", "algorithm": "ES256", "active": "on"}
    # An Ed25519 key for ES256 is refused; then the right kind of key is taken.
    response = client.post(
        "/admin/registry/consentissuer/add/",
        {**data, "public_key": _pem(ed25519.Ed25519PrivateKey.generate().public_key())},
    )
    assert response.status_code == 200 and not ConsentIssuer.objects.exists()
    response = client.post(
        "/admin/registry/consentissuer/add/",
        {**data, "public_key": _pem(ec.generate_private_key(ec.SECP256R1()).public_key())},
    )
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action=AuditAction.CONSENT_ISSUER_REGISTERED).count() == 1


@pytest.mark.parametrize(
    "persona_name", ["department_officer", "division_manager", "school_admin", "principal"]
)
@pytest.mark.parametrize(
    "url",
    [CLIENTS, "/admin/registry/partnerkey/", "/admin/registry/consentissuer/", "/admin/registry/apicall/"],
)
def test_nobody_but_the_department_administrator_sees_the_partners(
    client_as, persona, persona_name, url, partner
):
    response = client_as(persona(persona_name)).get(url)
    assert response.status_code == 403


def test_the_partner_pages_are_not_listed_for_others(client_as, department_officer):
    page = client_as(department_officer).get("/admin/").content.decode()
    assert "partnerclient" not in page and "apicall" not in page
