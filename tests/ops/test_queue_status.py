"""`manage.py queue_status`: the queues' lengths read from the real Redis broker, the work the
database owes (PDFs due, the Ministry's outbox, signing batches), and Nagios exit codes.

Each test's queues have names of their own (the settings every process reads), so messages of
other tests never count; the database is made quiet inside the test's transaction (rolled back).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from portal.models import PdfDue
from registry.choices import OutboxState
from registry.models import OutboxMessage
from signing.models import BatchState, SigningBatch


@pytest.fixture
def queues(settings):
    """Queues of this test (signing, pdf, forwarding, default); their Redis lists removed after."""
    tag = uuid.uuid4().hex[:8]
    names = {kind: f"test-{kind}-{tag}" for kind in ("signing", "pdf", "forwarding", "default")}
    settings.HOCBA_SIGNING_QUEUE = names["signing"]
    settings.HOCBA_PDF_QUEUE = names["pdf"]
    settings.HOCBA_FORWARD_QUEUE = names["forwarding"]
    settings.CELERY_TASK_DEFAULT_QUEUE = names["default"]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield names
    for name in names.values():
        client.delete(*[name, *(f"{name}\x06\x16{step}" for step in (3, 6, 9))])
    client.close()


@pytest.fixture
def quiet(db):
    """No PDF owed, no message to send or dead, no batch active (in this test's transaction)."""
    PdfDue.objects.all().delete()
    OutboxMessage.objects.filter(
        state__in=[
            OutboxState.PENDING,
            OutboxState.SENDING,
            OutboxState.DEAD,
            OutboxState.SENT,
            OutboxState.WAITING_PERSONAL_ID,
        ]
    ).update(state=OutboxState.VOID)
    SigningBatch.objects.filter(state__in=[BatchState.QUEUED, BatchState.RUNNING]).update(
        state=BatchState.CANCELLED, lease_owner="", lease_until=None
    )


def status(*args: str) -> tuple[int, str]:
    """The command's exit code and output."""
    out = io.StringIO()
    try:
        call_command("queue_status", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def as_json(*args: str) -> tuple[int, dict]:
    code, out = status("--json", *args)
    return code, json.loads(out)


def send(queue: str, count: int, **options) -> None:
    """Messages published to the broker as the portal publishes them (no worker consumes them)."""
    from config.celery import app

    for _ in range(count):
        app.send_task("signing.tasks.signing_batches_resume", queue=queue, **options)


def test_a_quiet_province_is_ok_with_every_queue_listed(queues, quiet):
    code, report = as_json()
    assert code == 0 and report["status"] == "OK" and report["problems"] == []
    assert report["queues"] == {name: 0 for name in queues.values()}
    assert report["pdf"]["due"] == 0 and report["outbox"]["pending"] == 0
    code, text = status()
    assert code == 0 and text.splitlines()[0].startswith("OK - ")
    assert f"queue {queues['pdf']}: 0" in text


def test_messages_waiting_in_a_queue_are_counted_with_their_priorities(queues, quiet):
    send(queues["signing"], 2)
    send(queues["signing"], 1, priority=9)  # kombu keeps it in a list of its own
    send(queues["forwarding"], 1)

    code, report = as_json("--warn", "3", "--crit", "10")
    assert report["queues"][queues["signing"]] == 3 and report["queues"][queues["forwarding"]] == 1
    assert report["queues"][queues["pdf"]] == 0
    assert code == 1 and report["problems"] == [f"queue {queues['signing']} 3 >= 3"]

    code, report = as_json("--warn", "1", "--crit", "3")
    assert code == 2 and report["status"] == "CRITICAL"
    assert set(report["problems"]) == {
        f"queue {queues['signing']} 3 >= 3",
        f"queue {queues['forwarding']} 1 >= 1",
    }


def test_the_pdfs_due_failing_and_old_are_read_from_the_database(queues, quiet, school):
    now = timezone.now()
    PdfDue.objects.create(school=school, record_pk=1_000_001)
    PdfDue.objects.create(
        school=school,
        record_pk=1_000_002,
        attempts=3,
        last_error="boom",
        due_at=now + dt.timedelta(minutes=5),
    )
    PdfDue.objects.create(school=school, record_pk=1_000_003, created_at=now - dt.timedelta(hours=2))

    code, report = as_json()
    assert report["pdf"] | {"oldest_seconds": None} == {
        "total": 3,
        "due": 2,  # the failed one waits for its back-off
        "rendering": 0,
        "failing": 1,
        "oldest_seconds": None,
    }
    assert 7200 <= report["pdf"]["oldest_seconds"] < 7200 + 600
    # A failing render needs a person (warning); two hours waited is critical by default (6 h)?
    # No: 2 h is past the warning age (1 h), below the critical one.
    assert code == 1 and set(report["problems"]) == {
        "pdf oldest " + f"{report['pdf']['oldest_seconds']}s >= 3600s",
        "pdf failing 1",
    }

    code, report = as_json("--warn-age", "60", "--crit-age", "3600")
    assert code == 2


def test_a_dead_message_to_the_ministry_and_a_stalled_batch_warn(
    queues, quiet, school, principal, certificates
):
    now = timezone.now()
    for n, state in enumerate([OutboxState.DEAD, OutboxState.PENDING, OutboxState.WAITING_PERSONAL_ID]):
        OutboxMessage.objects.create(
            school=school,
            record_id=f"{school.code}.Q{n}.2025-2026",
            version=1,
            kind="submit",
            idempotency_key=uuid.uuid4().hex * 2,
            document=b"<x/>",
            student_code=f"Q{n}",
            personal_id="001206000001" if state != OutboxState.WAITING_PERSONAL_ID else None,
            state=state,
        )
    batch = dict(
        school=school,
        step="principal",
        scope_label="8A",
        signer=principal,
        certificate=certificates["principal"],
        state=BatchState.RUNNING,
        lease_owner="worker-1",
    )
    SigningBatch.objects.create(**batch, lease_until=now + dt.timedelta(seconds=30))  # alive
    SigningBatch.objects.create(**batch, lease_until=now - dt.timedelta(seconds=5))  # the sweep's turn
    SigningBatch.objects.create(**batch, lease_until=now - dt.timedelta(minutes=10))  # nobody took it

    code, report = as_json()
    assert report["outbox"] | {"oldest_pending_seconds": None} == {
        "pending": 1,
        "awaiting_verdict": 0,
        "waiting_personal_id": 1,
        "dead": 1,
        "oldest_pending_seconds": None,
    }
    assert report["signing"] == {"queued": 0, "running": 3, "stalled": 1, "retrying": 0}
    assert code == 1 and set(report["problems"]) == {"outbox dead 1", "signing stalled 1"}


def test_a_broker_that_cannot_be_reached_is_unknown(queues, quiet, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    code, text = status()
    assert code == 3 and text.startswith("UNKNOWN - ")


@pytest.mark.parametrize(
    "args", [["--warn", "0"], ["--warn", "10", "--crit", "5"], ["--warn-age", "7200", "--crit-age", "60"]]
)
def test_thresholds_that_make_no_sense_are_refused(queues, quiet, args):
    with pytest.raises(CommandError):
        status(*args)
