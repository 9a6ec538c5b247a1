"""Forwarding to the Ministry, attacked: the repository's words are text, never markup; a hostile or
broken repository cannot make the portal request another path, keep unbounded reasons, or lose a
message; a school never sees another school's messages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone

from registry import ministry
from registry.choices import OutboxState
from registry.forwarding import rejection_text, relay_run
from registry.models import OutboxMessage
from tests.signing_kit import issue
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401 -- fixtures
from transcripts.models import YearRecordStatus
from transcripts.records.services import year_record_forwarding_note

S = OutboxState
HOSTILE = '<script>alert("kho")</script><img src=x onerror=alert(1)>'


class Hostile:
    """A repository that answers what the test tells it, and remembers every path asked."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.post_answer: tuple[int, dict] = (202, {"receipt_id": "r-1", "status": "received"})
        self.get_answer: tuple[int, dict] = (200, {"receipt_id": "r-1", "status": "received", "reasons": []})
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hostile.paths.append(self.path)
                self._answer(*hostile.post_answer)

            def do_GET(self) -> None:
                hostile.paths.append(self.path)
                self._answer(*hostile.get_answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hostile(settings) -> Iterator[Hostile]:
    repository = Hostile()
    settings.HOCBA_MINISTRY_URL = repository.url
    settings.HOCBA_MINISTRY_CA = ""
    settings.HOCBA_MINISTRY_CLIENT_CERT = ""
    settings.HOCBA_MINISTRY_TOKEN = "hostile-test"
    settings.HOCBA_FORWARD_BACKOFF_BASE = 30  # one attempt per test: the next is not due yet
    ministry.http_client_reset()
    try:
        yield repository
    finally:
        repository.server.shutdown()
        ministry.http_client_reset()


@pytest.fixture
def sent(homeroom_teacher, principal, school, records):  # noqa: F811
    record = issue(records[0], homeroom_teacher=homeroom_teacher, principal=principal, school=school)
    connection.set_schema_to_public()
    return record


def test_a_receipt_id_that_would_change_the_path_is_refused(hostile, sent):
    hostile.post_answer = (202, {"receipt_id": "../../admin/delete?all=1", "status": "received"})
    relay_run(worker="t", seconds=2)
    message = OutboxMessage.objects.get(record_id=sent.record_id)
    assert message.state == S.PENDING and message.receipt_id == ""
    assert "receipt id" in message.last_error
    assert all(path == "/v1/messages" for path in hostile.paths)  # nothing else was ever asked


def test_a_flood_of_reasons_is_cut_and_the_record_is_still_rejected(hostile, sent, school):
    hostile.get_answer = (
        200,
        {
            "receipt_id": "r-1",
            "status": "rejected",
            "reasons": [{"code": "schema", "message": "x" * 10_000}] * 5_000,
        },
    )
    relay_run(worker="t", seconds=10)
    message = OutboxMessage.objects.get(record_id=sent.record_id)
    assert message.state == S.REJECTED
    assert len(message.reasons) == ministry.MAX_REASONS
    assert all(len(r["message"]) <= 500 for r in message.reasons)
    connection.set_tenant(school)
    sent.refresh_from_db()
    assert sent.status == YearRecordStatus.REJECTED


@pytest.mark.parametrize(
    "answer",
    [(200, {"no": "receipt"}), (302, {}), (500, {"error": HOSTILE}), (202, {"receipt_id": ""})],
    ids=["no-receipt", "redirect", "server-error", "empty-receipt"],
)
def test_a_broken_answer_is_retried_never_lost_or_taken_as_received(hostile, sent, answer):
    hostile.post_answer = answer
    relay_run(worker="t", seconds=2)
    message = OutboxMessage.objects.get(record_id=sent.record_id)
    assert message.state == S.PENDING and message.attempts >= 1 and message.receipt_id == ""


def test_the_ministrys_words_are_shown_as_text_on_every_page(
    sent, school, client_as, homeroom_teacher, principal
):
    reasons = [{"code": "signature", "message": HOSTILE}, {"code": HOSTILE, "message": ""}]
    now = timezone.now()
    OutboxMessage.objects.filter(record_id=sent.record_id).update(
        state=S.REJECTED, receipt_id="r-1", sent_at=now, decided_at=now, reasons=reasons
    )
    connection.set_tenant(school)
    year_record_forwarding_note(
        school=school, record_id=sent.record_id, version=1, to_status=YearRecordStatus.QUEUED
    )
    year_record_forwarding_note(
        school=school,
        record_id=sent.record_id,
        version=1,
        to_status=YearRecordStatus.REJECTED,
        note=rejection_text(reasons),
    )
    connection.set_schema_to_public()
    pages = [
        client_as(homeroom_teacher).get(
            f"/truong/{school.code}/so-diem/ho-so/lop/{sent.enrolment.school_class_id}/"
        ),
        client_as(principal).get(f"/truong/{school.code}/"),
    ]
    for page in pages:
        body = page.content.decode()
        assert page.status_code == 200
        assert "<script>alert" not in body and "onerror=alert" not in body.replace("onerror=alert(1)&gt;", "")
        assert "&lt;script&gt;alert(&quot;kho&quot;)&lt;/script&gt;" in body


def test_another_schools_leaders_never_see_these_messages(sent, other_school, client_as, other_school_admin):
    now = timezone.now()
    OutboxMessage.objects.filter(record_id=sent.record_id).update(
        state=S.REJECTED, receipt_id="r-1", sent_at=now, decided_at=now, reasons=[{"code": "schema"}]
    )
    body = client_as(other_school_admin).get(f"/truong/{other_school.code}/").content.decode()
    assert sent.record_id not in body
