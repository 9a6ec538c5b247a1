"""The OpenAPI schema, its documentation page (assets served locally), and schemathesis against it.

Schemathesis generates requests from the schema and sends them to the WSGI app in-process (the
test's own database transaction), with a valid key and purpose and, for the records endpoints, a
valid consent token for the personal ID it generated: the requests reach the handlers. Checked:
no 5xx, and every response (status, content type, body) conforms to the schema.
"""

from __future__ import annotations

import re
import tempfile

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from transcripts.records.pdf import year_record_pdf_render

# Hypothesis keeps its caches in ./.hypothesis by default: not in the work tree.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hocba-hypothesis-"))


def test_the_schema_is_served_as_openapi_3(client, db):
    assert client.get("/api/schema/").content.startswith(b"openapi: 3.")
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/students/records/",
        "/api/v1/records/{record_id}/versions/{version}/xml/",
        "/api/v1/records/{record_id}/versions/{version}/pdf/",
        "/api/v1/verifications/",
        "/api/v1/progress/divisions/",
        "/api/v1/progress/schools/",
    }
    assert schema["components"]["securitySchemes"]["partnerKey"]["scheme"] == "bearer"


def test_the_docs_page_loads_its_assets_from_the_portal_not_a_cdn(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui" in s for s in sources), sources
    assert all(s.startswith("/") for s in sources if "swagger" in s), sources
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()


# --- Schemathesis --------------------------------------------------------------------------------


def _schema():
    """The schema as /api/schema/ serves it (made by the same generator, at collection time, without
    a request: loading it through the app would need the database before the tests have it)."""
    from drf_spectacular.generators import SchemaGenerator

    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    loaded.app = application  # the calls go to the WSGI app in-process
    loaded.location = "/api/schema/"
    return loaded


api = _schema()


@pytest.fixture
def fuzz(partner, consent_issuer, make_token, issued):
    """A partner with every scope, a consent issuer and an issued record: what lets calls through.

    The WSGI app runs in the test's thread, on the test's connection (inside its transaction):
    Django would close that connection at the end of each request, so that is switched off for
    the test, as django.test.Client does.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield partner, make_token
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@api.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_conforms_to_its_schema_and_never_errs(case, fuzz):
    partner, make_token = fuzz
    case.headers = dict(case.headers or {})
    case.headers["Authorization"] = f"Bearer {partner.key}"
    # The WSGI transport hands schemathesis the bytes as sent, and answers are gzipped when asked
    # (GZipMiddleware): ask for them plain, as the schema describes the body, not its encoding.
    case.headers["Accept-Encoding"] = "identity"
    case.headers["X-Purpose"] = "admission" if "records" in case.path else "statistics"
    personal_id = case.body.get("personal_id") if isinstance(case.body, dict) else None
    if isinstance(personal_id, str) and re.fullmatch(r"[0-9]{12}", personal_id):
        case.headers["X-Consent-Token"] = make_token(partner, personal_id)
    elif "X-Consent-Token" in case.headers:
        case.headers["X-Consent-Token"] = make_token(partner, "079000000012")
    case.call_and_validate(checks=CHECKS)


def test_the_answers_with_real_records_conform_to_the_schema_too(fuzz, issued, school):
    """The generated calls rarely hit an issued record: the list, the XML and the PDF of one, each
    called through schemathesis and validated against the schema."""
    partner, make_token = fuzz
    headers = {
        "Authorization": f"Bearer {partner.key}",
        "X-Purpose": "admission",
        "X-Consent-Token": make_token(partner, issued.personal_id),
        "Accept-Encoding": "identity",  # as above
    }
    listing = api["/api/v1/students/records/"]["POST"].Case(
        body={"personal_id": issued.personal_id}, headers=headers, media_type="application/json"
    )
    response = listing.call_and_validate(checks=CHECKS)
    assert response.status_code == 200 and len(response.json()["records"]) == 1

    path = {"record_id": issued.record_id, "version": issued.version}
    xml = api["/api/v1/records/{record_id}/versions/{version}/xml/"]["GET"]
    pdf = api["/api/v1/records/{record_id}/versions/{version}/pdf/"]["GET"]
    assert xml.Case(path_parameters=path, headers=headers).call_and_validate(checks=CHECKS).status_code == 200
    assert pdf.Case(path_parameters=path, headers=headers).call_and_validate(checks=CHECKS).status_code == 404
    with school:
        year_record_pdf_render(record_id=issued.pk)
    assert pdf.Case(path_parameters=path, headers=headers).call_and_validate(checks=CHECKS).status_code == 200
