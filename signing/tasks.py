"""Celery tasks of signing: thin, they load and call a service (style.md)."""

from __future__ import annotations

import os
import socket

from celery import shared_task
from celery.signals import worker_ready

from . import services


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@shared_task(acks_late=True)
def signing_batch_run(batch_pk: int) -> str:
    """Sign a batch's pending items. The batch's lease, not the message, decides who runs it: a
    duplicate delivery finds the batch held and returns; a worker that died lets the lease run out
    and the sweep queues the batch again."""
    return services.signing_batch_run(batch_pk=batch_pk, worker=_worker_id())


@shared_task
def signing_batches_resume() -> int:
    """The sweep (Celery beat, and each worker as it starts): batches nobody holds are queued again."""
    return len(services.signing_batches_resume())


@worker_ready.connect
def _resume_on_start(sender=None, **kwargs) -> None:
    signing_batches_resume.apply_async(headers={"_schema_name": "public"})
