"""manage.py api_demo: what it prints lets a person call the API."""

from __future__ import annotations

import io
import re
import stat

from django.core.management import call_command

from portal.choices import AuditAction
from portal.models import AuditEntry


def run(department_admin, key_file, personal_id: str) -> str:
    out = io.StringIO()
    call_command(
        "api_demo",
        actor=department_admin.username,
        personal_id=personal_id,
        key_file=str(key_file),
        stdout=out,
    )
    return out.getvalue()


def test_the_demo_prints_a_key_and_a_consent_token_that_open_the_records(
    client, department_admin, issued, tmp_path
):
    key_file = tmp_path / "consent.pem"
    printed = run(department_admin, key_file, issued.personal_id)
    key = re.search(r"API key \(shown once\): (\S+)", printed).group(1)
    token = re.search(r"consent token: (\S+)", printed).group(1)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    response = client.post(
        "/api/v1/students/records/",
        {"personal_id": issued.personal_id},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_PURPOSE="admission",
        HTTP_X_CONSENT_TOKEN=token,
    )
    assert response.status_code == 200 and len(response.json()["records"]) == 1

    # Run again: the same issuer key, a new API key, the old one revoked.
    again = run(department_admin, key_file, issued.personal_id)
    assert re.search(r"API key \(shown once\): (\S+)", again).group(1) != key
    response = client.get(
        "/api/v1/progress/divisions/", HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_PURPOSE="statistics"
    )
    assert response.status_code == 401
    assert AuditEntry.objects.filter(action=AuditAction.PARTNER_CLIENT_REGISTERED).count() == 1
    assert AuditEntry.objects.filter(action=AuditAction.CONSENT_ISSUER_REGISTERED).count() == 1
