"""Celery tasks of signing: thin, they load and call a service (style.md)."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import services


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(acks_late=True)
def signing_batch_run(batch_pk: int) -> str:
    """Sign a batch's pending items. The batch's lease, not the message, decides who runs it: a
    duplicate delivery finds the batch held and returns; a worker that died lets the lease run out
    and the sweep queues the batch again. A batch paused by a failing key service is claimed only
    once its `next_attempt_at` has come: the message queued with a countdown is a wake-up, the
    database decides."""
    return services.signing_batch_run(batch_pk=batch_pk, worker=_worker_id())


@shared_task
def signing_batches_resume() -> int:
    """The sweep (Celery beat every HOCBA_SIGNING_RESUME_SECONDS, and each worker as it starts):
    batches nobody holds, and paused batches now due, are queued again."""
    return len(services.signing_batches_resume())


@worker_ready.connect
def _resume_on_start(sender=None, **kwargs) -> None:
    """A worker that consumes the signing queue looks for batches to take up as it starts."""
    queue = getattr(settings, "HOCBA_SIGNING_QUEUE", "signing")
    consumer = getattr(sender, "task_consumer", None)
    consumed = {q.name for q in getattr(consumer, "queues", ())} if consumer is not None else {queue}
    if queue in consumed:
        signing_batches_resume.apply_async(headers={"_schema_name": "public"})
