"""The documents storage on an S3-compatible object store over real HTTP: moto in server mode, started
by the test on a free port, a bucket made through boto3, STORAGES["documents"] set to
django-storages' S3Storage as production sets it (docs/operations.md, "Documents").

A record is issued and its PDF rendered by the real service; the school's download pages and the
partner API hand out the PDF and the issued XML from the bucket. An object changed or deleted in
the bucket behind the portal's back is refused (503, a Vietnamese page or the API's error code),
never served.
"""

from __future__ import annotations

import hashlib

import boto3
import pytest
from django.db import connection
from moto.server import ThreadedMotoServer

from tests.transcripts import test_year_close, test_year_records
from tests.transcripts.test_records_pages import record_url
from transcripts.models import YearRecordPdf, YearRecordXml
from transcripts.records.pdf import year_record_pdf_render

from .test_records import pdf_url, xml_url

complete_class = test_year_close.complete_class
approved_class = test_year_records.approved_class
records = test_year_records.records

BUCKET = "hocba-documents-test"
CREDENTIALS = {"aws_access_key_id": "moto-test-key", "aws_secret_access_key": "moto-test-secret"}
REGION = "ap-southeast-1"


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 and a free port, for this module; its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings):
    """An empty bucket, and the portal's documents storage pointed at it (as production sets it)."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **CREDENTIALS)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": REGION,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "default_acl": None,
                "file_overwrite": False,
                "addressing_style": "path",
            },
        },
    }
    yield s3
    for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=listed["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def keys(s3) -> set[str]:
    return {listed["Key"] for listed in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


@pytest.fixture
def rendered(issued, school, bucket):
    """The issued record's PDF rendered by the service into the bucket; (record, pdf row, xml row)."""
    with school:
        year_record_pdf_render(record_id=issued.pk)
        pdf = YearRecordPdf.objects.get(record_id=issued.pk)
        xml = YearRecordXml.objects.get(record_id=issued.pk)
    return issued, pdf, xml


def test_the_pdf_and_the_issued_xml_go_to_the_bucket_and_only_their_names_to_the_database(
    rendered, bucket, school
):
    record, pdf, xml = rendered
    assert keys(bucket) == {pdf.name, xml.name}
    assert pdf.name == f"{school.schema_name}/{record.record_id}/v1/{pdf.sha256}.pdf"
    assert xml.name == f"{school.schema_name}/{record.record_id}/v1/{xml.sha256}.xml"
    stored = bucket.get_object(Bucket=BUCKET, Key=pdf.name)["Body"].read()
    assert stored.startswith(b"%PDF-") and hashlib.sha256(stored).hexdigest() == pdf.sha256
    assert len(stored) == pdf.size
    assert bucket.get_object(Bucket=BUCKET, Key=xml.name)["Body"].read() == record.issued_xml
    with connection.cursor() as cursor:  # no bytes of the PDF in the school's table any more
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            [school.schema_name, "transcripts_yearrecordpdf"],
        )
        assert "pdf" not in {column for (column,) in cursor.fetchall()}


def test_the_school_downloads_come_from_the_bucket(rendered, bucket, client_as, homeroom_teacher, school):
    record, pdf, _xml = rendered
    client = client_as(homeroom_teacher)
    response = client.get(record_url(school, record, "pdf/"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content == bucket.get_object(Bucket=BUCKET, Key=pdf.name)["Body"].read()
    response = client.get(record_url(school, record, "xml/"))
    assert response.status_code == 200 and response.content == record.issued_xml


def test_the_partner_api_hands_out_the_bucket_copies(rendered, client, partner, consent_issuer, make_token):
    record, pdf, _xml = rendered
    headers = partner.headers(consent=make_token(partner, record.personal_id))
    response = client.get(pdf_url(record), **headers)
    assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == pdf.sha256
    response = client.get(xml_url(record), **headers)
    assert response.status_code == 200 and response.content == record.issued_xml


@pytest.mark.parametrize("kind", ["pdf", "xml"])
def test_an_object_changed_in_the_bucket_is_refused_in_vietnamese_never_served(
    rendered, bucket, client_as, homeroom_teacher, school, kind, caplog
):
    record, pdf, xml = rendered
    name = pdf.name if kind == "pdf" else xml.name
    forged = b"%PDF-1.7 forged" if kind == "pdf" else record.issued_xml.replace(b"</", b" </", 1)
    bucket.put_object(Bucket=BUCKET, Key=name, Body=forged)  # behind the portal's back

    response = client_as(homeroom_teacher).get(record_url(school, record, f"{kind}/"))
    assert response.status_code == 503
    text = response.content.decode()
    assert "không khớp" in text and forged.decode() not in text
    assert "tampered" in caplog.text


def test_an_object_deleted_from_the_bucket_is_refused_by_the_pages_and_the_api(
    rendered, bucket, client_as, homeroom_teacher, school, client, partner, consent_issuer, make_token
):
    record, pdf, _xml = rendered
    bucket.delete_object(Bucket=BUCKET, Key=pdf.name)

    response = client_as(homeroom_teacher).get(record_url(school, record, "pdf/"))
    assert response.status_code == 503 and "không đọc được" in response.content.decode()
    response = client.get(pdf_url(record), **partner.headers(consent=make_token(partner, record.personal_id)))
    assert response.status_code == 503 and response.json()["code"] == "document_unavailable"
