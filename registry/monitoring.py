"""What the background work looks like right now, for a monitoring system (`manage.py queue_status`).

Two kinds of fact: the Celery queues' lengths in the broker (Redis lists; messages no worker has
taken yet), and the work the database says is owed, which outlives any lost message: the PDFs due
(portal.PdfDue), the messages to the Ministry (registry.OutboxMessage) and the signing batches
(signing.SigningBatch), all in the public schema, so a handful of queries whatever the number of
schools. A queue can be empty while the database owes work (a message lost, a pool that is down
and a sweep that has not run): both are read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from portal.models import PdfDue
from signing.models import BatchState, SigningBatch

from .choices import OutboxState
from .models import OutboxMessage

OK, WARNING, CRITICAL = 0, 1, 2
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}

# kombu's Redis transport keeps a queue's prioritised messages in lists named after the queue
# with this separator and the priority step (0 is the queue's own name).
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    warn: int = 1000  # messages waiting in one queue, or records owed (PDFs, outbox)
    crit: int = 10000
    warn_age: int = 3600  # seconds the oldest PDF due or outbox message has waited
    crit_age: int = 6 * 3600


@dataclasses.dataclass
class QueueStatus:
    queues: dict[str, int]
    unacked: int  # messages taken by a worker and not yet acknowledged (running or reserved)
    pdf: dict[str, Any]
    outbox: dict[str, Any]
    signing: dict[str, Any]
    status: int = OK
    problems: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": STATUS_NAMES[self.status],
            "exit_code": self.status,
            "problems": self.problems,
            "queues": self.queues,
            "unacked": self.unacked,
            "pdf": self.pdf,
            "outbox": self.outbox,
            "signing": self.signing,
        }


def queue_names() -> list[str]:
    """The Celery queues the portal sends to, from the settings every process shares."""
    names = [
        settings.HOCBA_SIGNING_QUEUE,
        settings.HOCBA_PDF_QUEUE,
        settings.HOCBA_FORWARD_QUEUE,
        # Celery's default queue: the sweeps, role expiry, progress recounts.
        getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"),
    ]
    return list(dict.fromkeys(names))


def broker_lengths(names: list[str]) -> tuple[dict[str, int], int]:
    """Each queue's waiting messages (all its priority lists) and the broker's unacked count."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for step in _PRIORITY_STEPS:
                pipe.llen(name if step == 0 else f"{name}{_PRIORITY_SEPARATOR}{step}")
        pipe.hlen("unacked")
        counts = pipe.execute()
    finally:
        client.close()
    lengths = {
        name: sum(counts[i * len(_PRIORITY_STEPS) : (i + 1) * len(_PRIORITY_STEPS)])
        for i, name in enumerate(names)
    }
    return lengths, counts[-1]


def _age(now: dt.datetime, since: dt.datetime | None) -> int | None:
    return None if since is None else max(0, int((now - since).total_seconds()))


def pdfs_due(now: dt.datetime) -> dict[str, Any]:
    figures = PdfDue.objects.aggregate(
        total=Count("id"),
        due=Count("id", filter=Q(due_at__lte=now)),
        rendering=Count("id", filter=Q(lease_until__gt=now)),
        failing=Count("id", filter=Q(attempts__gt=0)),
        oldest=Min("created_at"),
    )
    return {
        "total": figures["total"],
        "due": figures["due"],
        "rendering": figures["rendering"],
        "failing": figures["failing"],
        "oldest_seconds": _age(now, figures["oldest"]),
    }


def outbox(now: dt.datetime) -> dict[str, Any]:
    to_send = [OutboxState.PENDING, OutboxState.SENDING]
    figures = OutboxMessage.objects.aggregate(
        pending=Count("id", filter=Q(state__in=to_send)),
        awaiting_verdict=Count("id", filter=Q(state=OutboxState.SENT)),
        waiting_personal_id=Count("id", filter=Q(state=OutboxState.WAITING_PERSONAL_ID)),
        dead=Count("id", filter=Q(state=OutboxState.DEAD)),
        oldest=Min("created_at", filter=Q(state__in=to_send)),
    )
    oldest = figures.pop("oldest")
    return {**figures, "oldest_pending_seconds": _age(now, oldest)}


def signing_batches(now: dt.datetime) -> dict[str, Any]:
    active = [BatchState.QUEUED, BatchState.RUNNING]
    # The resume sweep (beat, every 15 s) takes up a batch whose lease ran out: only one left so
    # for a further lease's length is stalled.
    grace = dt.timedelta(seconds=settings.HOCBA_SIGNING_LEASE_SECONDS)
    return SigningBatch.objects.aggregate(
        queued=Count("id", filter=Q(state=BatchState.QUEUED)),
        running=Count("id", filter=Q(state=BatchState.RUNNING)),
        # A worker held it and its lease ran out long ago: the worker died and no signing pool
        # (or no beat) is up to take the batch again.
        stalled=Count("id", filter=Q(state__in=active, lease_until__lt=now - grace)),
        retrying=Count("id", filter=Q(state__in=active, next_attempt_at__isnull=False)),
    )


def queue_status(*, thresholds: Thresholds) -> QueueStatus:
    """The queues and the work owed, judged against the thresholds (Nagios: 0, 1, 2)."""
    now = timezone.now()
    lengths, unacked = broker_lengths(queue_names())
    result = QueueStatus(
        queues=lengths, unacked=unacked, pdf=pdfs_due(now), outbox=outbox(now), signing=signing_batches(now)
    )

    def judge(level: int, problem: str) -> None:
        result.status = max(result.status, level)
        result.problems.append(problem)

    def by_count(value: int, what: str) -> None:
        if value >= thresholds.crit:
            judge(CRITICAL, f"{what} {value} >= {thresholds.crit}")
        elif value >= thresholds.warn:
            judge(WARNING, f"{what} {value} >= {thresholds.warn}")

    def by_age(value: int | None, what: str) -> None:
        if value is None:
            return
        if value >= thresholds.crit_age:
            judge(CRITICAL, f"{what} {value}s >= {thresholds.crit_age}s")
        elif value >= thresholds.warn_age:
            judge(WARNING, f"{what} {value}s >= {thresholds.warn_age}s")

    for name, length in lengths.items():
        by_count(length, f"queue {name}")
    by_count(result.pdf["due"], "pdf due")
    by_age(result.pdf["oldest_seconds"], "pdf oldest")
    by_count(result.outbox["pending"], "outbox pending")
    by_age(result.outbox["oldest_pending_seconds"], "outbox oldest")
    # Conditions that need a person whatever their number.
    if result.pdf["failing"]:
        judge(WARNING, f"pdf failing {result.pdf['failing']}")
    if result.outbox["dead"]:
        judge(WARNING, f"outbox dead {result.outbox['dead']}")
    if result.signing["stalled"]:
        judge(WARNING, f"signing stalled {result.signing['stalled']}")
    return result
