"""Celery tasks of registry: thin, they call the relay (style.md)."""

from __future__ import annotations

import os
import socket

from celery import shared_task

from . import archive_jobs
from .forwarding import relay_run


@shared_task(acks_late=True)
def forward_relay() -> dict:
    """One run of the relay to the Ministry (registry.forwarding): woken by beat every
    HOCBA_FORWARD_RELAY_SECONDS and after each issue. Runs side by side safely: messages are
    claimed with SKIP LOCKED under a lease, so two runs never send the same message at once, and
    a duplicate wake-up finds nothing due."""
    return relay_run(worker=f"{socket.gethostname()}:{os.getpid()}").as_dict()


@shared_task(acks_late=True)
def archive_export_run(export_pk: int) -> str:
    """Build one archive the Department asked for (registry.archive_jobs.archive_export_run)."""
    return archive_jobs.archive_export_run(export_pk=export_pk).state
