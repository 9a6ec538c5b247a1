"""The resume sweep queues a stale batch once, not at every sweep (issue 15).

`signing_batches_resume` runs every 15 s. A batch it queues is marked `enqueued_until` in the
transaction that selects it; the worker's claim clears the mark. The messages go to a queue of this
test's own in the test Redis, read back (LLEN, decoded), never consumed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from signing.models import BatchState, SigningBatch
from signing.services import runner, signing_batch_confirm, signing_batches_resume
from tests.signing.test_batches import confirmed, teacher_batch  # noqa: F401 -- a fixture, a helper
from tests.signing_kit import PIN
from tests.transcripts.test_year_close import complete_class  # noqa: F401 -- fixtures used below
from tests.transcripts.test_year_records import approved_class, records  # noqa: F401


@pytest.fixture
def signing_queue(settings):
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    name = f"test-signing-resume-{uuid.uuid4().hex[:8]}"
    settings.HOCBA_SIGNING_QUEUE = name
    yield client, name
    client.delete(name)
    client.close()


def _queued(client, queue: str, batch_pk: int) -> int:
    """How many signing_batch_run messages for this batch the queue holds."""
    count = 0
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        if message["headers"]["task"] == "signing.tasks.signing_batch_run" and args == [batch_pk]:
            count += 1
    return count


def _sweeps(batch_pk: int, times: int = 10) -> list[bool]:
    """Run the sweep `times` in a row: did each queue this batch? (Other runs' committed batches
    may be due too; only this one counts.)"""
    return [batch_pk in signing_batches_resume() for _ in range(times)]


def test_ten_sweeps_in_a_row_queue_a_stale_batch_once(
    homeroom_teacher,
    school,
    confirmed,  # noqa: F811 -- the fixture imported above
    certificates,
    approved_class,  # noqa: F811
    signing_queue,
):
    client, queue = signing_queue
    school_class, _ = approved_class
    batch = teacher_batch(homeroom_teacher, school, certificates, school_class)
    signing_batch_confirm(actor=homeroom_teacher, school=school, batch=batch, pin=PIN)
    # Its worker died holding it: the lease ran out.
    SigningBatch.objects.filter(pk=batch.pk).update(
        state=BatchState.RUNNING,
        lease_owner="dead-worker",
        lease_until=timezone.now() - dt.timedelta(seconds=1),
    )

    assert _sweeps(batch.pk) == [True] + [False] * 9
    assert _queued(client, queue, batch.pk) == 1
    marked = SigningBatch.objects.get(pk=batch.pk).enqueued_until
    assert marked is not None and marked > timezone.now() + dt.timedelta(seconds=250)

    # A worker takes it (the claim clears the mark), and dies too: queued again, once.
    assert runner._claim(batch.pk, "worker-2")
    assert SigningBatch.objects.get(pk=batch.pk).enqueued_until is None
    SigningBatch.objects.filter(pk=batch.pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert _sweeps(batch.pk) == [True] + [False] * 9
    assert _queued(client, queue, batch.pk) == 2

    # The message lost before any worker took it: once the mark runs out, queued again, once.
    SigningBatch.objects.filter(pk=batch.pk).update(enqueued_until=timezone.now() - dt.timedelta(seconds=1))
    assert _sweeps(batch.pk) == [True] + [False] * 9
    assert _queued(client, queue, batch.pk) == 3
