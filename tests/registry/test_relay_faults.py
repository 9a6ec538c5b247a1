"""Fault tests of the relay to the Ministry (issue 11), against the reference repository as a real
separate process over mutual TLS.

30 % errors, 2 s latency, dropped connections, 429 bursts, the repository down for a while and
back, the repository storing a message and crashing before answering, the relay's worker killed
mid-batch, Redis restarted. In each: every record ends acknowledged, none lost, none accepted
twice, counted on the repository's side (`relay_kit.held_once`); and the fault is shown to have
happened (the repository's totals, its exit status, the outbox's leases), so that no test passes
for want of a fault.

Documents: 30 genuinely sealed year records of a class of their own (made once, rolled back).
Each test writes fresh outbox rows for them through `registry.services.outbox_issued` and sends
them to a fresh repository. The first six run the relay in this process (`relay_run`); the last
two need committed rows and a real Celery worker (`tests.worker.Worker`, a queue of its own).
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection

from portal.models import School
from registry import ministry
from registry.choices import OutboxState
from registry.forwarding import relay_run
from registry.models import OutboxMessage
from tests.reference.ministry_service import MinistryService
from tests.registry.relay_kit import (
    Documents,
    RedisServer,
    held_once,
    ministry_env,
    outbox_purge,
    outbox_write,
    point_at,
    relay_until_done,
    repository_for,
    seal_documents,
    states,
    unfinished,
)
from tests.worker import Worker

pytestmark = pytest.mark.slow

S = OutboxState
RECORDS = 30
WAKE_KEY = "registry:relay-wake"  # registry.services.relay_wake's "a wake-up was just sent"
FORWARD_TASK = "registry.tasks.forward_relay"


@pytest.fixture(scope="module")
def documents(django_db_setup, django_db_blocker, signing_trust, tmp_path_factory) -> Documents:
    return seal_documents(django_db_blocker, signing_trust, tmp_path_factory.mktemp("relay-trust"), RECORDS)


@pytest.fixture
def repository(documents) -> Iterator[MinistryService]:
    """A fresh repository per test (its own data): the same records come back in every test."""
    service = repository_for(documents)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def forwarding(repository, settings, db) -> Iterator[MinistryService]:
    """This process's relay pointed at the repository."""
    point_at(repository, settings)
    try:
        yield repository
    finally:
        ministry.http_client_reset()


def _school(documents: Documents) -> School:
    return School.objects.get(code=documents.school_code)


# --- The relay in this process: the repository misbehaves -----------------------------------------


def test_30_percent_errors(documents, forwarding):
    forwarding.faults(error_rate=0.3)
    outbox_write(_school(documents), documents.records)
    outcomes = relay_until_done(documents.record_ids)

    state = held_once(forwarding, documents)
    assert state["totals"]["errors_injected"] > 0
    assert outcomes.get("retry", 0) > 0  # sends answered 503, tried again
    assert not OutboxMessage.objects.filter(attempts__gt=0, state=S.DEAD).exists()


def test_2_seconds_latency(documents, forwarding):
    """Slow is not failed: every message is sent once, no request times out, nothing is resent."""
    few = dataclasses.replace(documents, records=documents.records[:5])
    forwarding.faults(latency_ms=2000)
    outbox_write(_school(few), few.records)
    outcomes = relay_until_done(few.record_ids)

    state = held_once(forwarding, few)
    assert forwarding.faults()["latency_ms"] == 2000  # every /v1/ request of the run slept 2 s
    assert state["totals"]["received"] == 5 and state["totals"]["replayed"] == 0
    assert outcomes.get("retry", 0) == 0 and outcomes["received"] == 5


def test_dropped_connections(documents, forwarding):
    forwarding.faults(drop_rate=0.3)
    outbox_write(_school(documents), documents.records)
    outcomes = relay_until_done(documents.record_ids)

    state = held_once(forwarding, documents)
    assert state["totals"]["dropped"] > 0
    # A dropped send is retried, a dropped poll asked again.
    assert outcomes.get("retry", 0) + outcomes.get("waiting", 0) > 0


def test_429_bursts_are_waited_out(documents, forwarding):
    """45 refusals for 30 messages: every one throttled once, half of them twice; Retry-After is
    honoured (a run does not come back to a throttled message) and nothing is sent in between."""
    forwarding.faults(throttle_next=45, retry_after=1)
    outbox_write(_school(documents), documents.records)

    # A run shorter than Retry-After: it sends each message once and leaves (a longer run waits
    # out the Retry-After and comes back, which is the same rule seen later).
    first = relay_run(worker="test-relay", seconds=0.5).as_dict()
    assert first["claimed"] == RECORDS and first["throttled"] == RECORDS, first
    assert set(states(documents.record_ids)) == {S.PENDING}
    relay_until_done(documents.record_ids)

    state = held_once(forwarding, documents)
    assert state["totals"]["throttled"] == 45
    assert state["totals"]["received"] == RECORDS + 45  # each POST either throttled or stored once


def test_the_repository_down_for_a_while_and_back(documents, forwarding):
    """Half the messages were received (their verdicts asked for), half not yet sent, when the
    repository goes away; the relay keeps trying, gives nothing up, and finishes once it is back."""
    school = _school(documents)
    early, late = documents.records[:15], documents.records[15:]
    outbox_write(school, early)
    relay_run(worker="test-relay", seconds=0.5)  # sends, and leaves before the first verdict poll
    assert set(states({d.record_id for d in early})) == {S.SENT}
    outbox_write(school, late)

    forwarding.stop(keep_data=True)
    down_until = time.monotonic() + 3
    while time.monotonic() < down_until:
        relay_run(worker="test-relay", seconds=1)
        time.sleep(0.2)
    waiting = OutboxMessage.objects.filter(record_id__in=documents.record_ids)
    late_rows = waiting.filter(record_id__in={d.record_id for d in late})
    assert set(late_rows.values_list("state", flat=True)) == {S.PENDING}
    assert all(m.attempts >= 1 and "Connect" in m.last_error for m in late_rows)
    early_rows = waiting.filter(record_id__in={d.record_id for d in early})
    assert set(early_rows.values_list("state", flat=True)) == {S.SENT}
    assert any(m.polls >= 1 and "Connect" in m.last_error for m in early_rows)

    forwarding.restart()
    relay_until_done(documents.record_ids)
    state = held_once(forwarding, documents)
    assert state["totals"]["received"] == RECORDS  # nothing reached it while it was down


def test_the_repository_stores_and_crashes_before_answering(documents, forwarding):
    """Twice the repository commits a message and exits before its answer; the relay sends the
    same key again and gets the first receipt: stored once."""
    outbox_write(_school(documents), documents.records)
    for _crash in range(2):
        forwarding.faults(crash_after_store_next=1)
        relay_run(worker="test-relay", seconds=1.5)
        assert forwarding.wait_exit() == 3  # the crash fault's exit status
        forwarding.restart()
    relay_until_done(documents.record_ids)

    state = held_once(forwarding, documents)
    assert state["totals"]["replayed"] >= 2  # at least the two unanswered messages, sent again


# --- A real worker: killed mid-batch; Redis restarted ---------------------------------------------


def _worker_env(repository: MinistryService, queue: str) -> dict[str, str]:
    return {
        **ministry_env(repository),
        "HOCBA_FORWARD_QUEUE": queue,
        "HOCBA_FORWARD_LEASE_SECONDS": "3",
        "HOCBA_FORWARD_BATCH": "10",
        "HOCBA_FORWARD_CONCURRENCY": "2",
        "HOCBA_FORWARD_BACKOFF_BASE": "0",
        "HOCBA_FORWARD_MAX_ATTEMPTS": "1000",
    }


def _wake(broker_url: str, queue: str) -> None:
    """One relay run queued, as beat (or an issue's wake-up) queues it; a new producer each time,
    so that what it declares is declared on the broker as it is now (a restarted Redis has lost
    the queue's binding)."""
    with Celery("relay-faults", broker=broker_url, set_as_current=False) as sender:
        sender.send_task(FORWARD_TASK, queue=queue, headers={"_schema_name": "public"})


def _drain(worker: Worker, broker_url: str, queue: str, record_ids: set[str], timeout: float = 90) -> None:
    """Wake the relay whenever its queue is empty (beat would, every few seconds) until every
    message is final."""
    import redis

    broker = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
    deadline = time.monotonic() + timeout
    while unfinished(record_ids) and time.monotonic() < deadline:
        assert worker.alive(), worker.output()[-3000:]
        if not broker.llen(queue):
            _wake(broker_url, queue)
        time.sleep(0.5)
    assert not unfinished(record_ids), (states(record_ids), worker.output()[-3000:])


def _wait_mid_run(worker: Worker, record_ids: set[str], *, received: int = 8) -> None:
    """Until `received` messages have their receipt and others are still claimed by the run."""
    deadline = time.monotonic() + 60
    rows = OutboxMessage.objects.filter(record_id__in=record_ids)
    while time.monotonic() < deadline:
        assert worker.alive(), worker.output()[-3000:]
        if (
            rows.filter(state__in=[S.SENT, S.ACKNOWLEDGED]).count() >= received
            and rows.filter(state=S.SENDING).exists()
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"The relay never got mid-run: {states(record_ids)}")


def _committed_outbox(documents: Documents):
    """Outbox rows committed for the documents (the worker is another process): no wake-up goes
    to the default queue as they are written (the tests wake their own), removed afterwards."""
    connection.set_schema_to_public()
    outbox_purge(documents.record_ids)  # what an interrupted run may have left
    cache.set(WAKE_KEY, 1, timeout=30)
    try:
        outbox_write(_school(documents), documents.records)
    finally:
        cache.delete(WAKE_KEY)


def test_a_relay_worker_killed_mid_batch(documents, repository, django_db_blocker, tmp_path):
    """SIGKILL while a claimed batch is in flight (each request takes 300 ms): its messages stay
    leased to the dead worker; once the leases (3 s) run out a new worker takes them up."""
    queue = f"test-relay-{uuid.uuid4().hex[:8]}"
    broker_url = django_settings.CELERY_BROKER_URL
    repository.faults(latency_ms=300)
    log = tmp_path / "worker.log"
    first = second = None
    with django_db_blocker.unblock():
        try:
            _committed_outbox(documents)
            env = _worker_env(repository, queue)
            first = Worker(queue=queue, log=log, env=env).start()
            _wake(broker_url, queue)
            _wait_mid_run(first, documents.record_ids)
            first.kill()

            dead = f"{socket.gethostname()}:{first.process.pid}"
            orphaned = set(
                OutboxMessage.objects.filter(
                    record_id__in=documents.record_ids, state=S.SENDING, lease_owner=dead
                ).values_list("pk", flat=True)
            )
            assert orphaned, states(documents.record_ids)
            assert unfinished(documents.record_ids) > len(orphaned)  # killed mid-batch, not at the end

            second = Worker(queue=queue, log=log, env=env).start()
            _drain(second, broker_url, queue, documents.record_ids)

            held_once(repository, documents)
            assert set(OutboxMessage.objects.filter(pk__in=orphaned).values_list("state", "lease_owner")) == {
                (S.ACKNOWLEDGED, "")
            }
            print(
                f"killed with {len(orphaned)} messages in flight; repository {repository.state()['totals']}"
            )
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            _broker_forget(broker_url, queue)
            outbox_purge(documents.record_ids)
            connection.set_schema_to_public()


def _broker_forget(broker_url: str, queue: str) -> None:
    """The test's queue, its binding and the killed worker's unacknowledged task removed from the
    test Redis (kombu would put that task back on the queue after the visibility timeout)."""
    import redis

    broker = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
    broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, payload in broker.hscan_iter("unacked"):
        if json.loads(payload)[-1] == queue:  # [message, exchange, routing key]
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


def test_redis_restarted_mid_run(documents, repository, django_db_blocker, tmp_path):
    """A private Redis (broker and cache of the worker) restarted without persistence while a run
    is in flight: the queued and unacknowledged tasks are lost with it; the outbox is not, and
    the next wake-up (beat's) drains it."""
    queue = f"test-relay-{uuid.uuid4().hex[:8]}"
    private = RedisServer(tmp_path)
    repository.faults(latency_ms=300)
    worker = None
    with django_db_blocker.unblock():
        try:
            _committed_outbox(documents)
            # A run stops taking new work after 3 s: the one cut off leaves work for the next.
            env = {**_worker_env(repository, queue), "HOCBA_FORWARD_RUN_SECONDS": "3"}
            worker = Worker(queue=queue, log=tmp_path / "worker.log", env=env)
            worker.env.update(REDIS_URL=private.url, CELERY_BROKER_URL=private.url)
            worker.start()
            _wake(private.url, queue)
            _wait_mid_run(worker, documents.record_ids)
            before = private.run_id()
            private.stop()
            time.sleep(1)
            private.start()
            assert private.run_id() != before
            assert unfinished(documents.record_ids)  # the run was cut off from Redis, not finished

            assert not private.client().llen(queue)  # no task left: Redis lost it

            _drain(worker, private.url, queue, documents.record_ids)
            held_once(repository, documents)
            # The worker saw Redis go, came back to the new one, and runs woken there did the rest.
            _before, lost, after = worker.output().partition("Connection to broker lost")
            assert lost, worker.output()[-3000:]
            claimed = re.findall(r"forward_relay\[[^]]+\] succeeded in [0-9.]+s: \{'claimed': (\d+)", after)
            assert sum(map(int, claimed)) > 0, after[-3000:]
        finally:
            if worker is not None:
                worker.stop()
            private.stop()
            outbox_purge(documents.record_ids)
            connection.set_schema_to_public()
