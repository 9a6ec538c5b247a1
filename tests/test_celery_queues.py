"""Each kind of background work has its own Celery queue by default (issue 15), so that a backlog
of PDF renderings never delays a principal's batch: what config/settings.py routes where."""

from __future__ import annotations

import os

import pytest

from config.celery import app

OVERRIDES = ("HOCBA_SIGNING_QUEUE", "HOCBA_PDF_QUEUE", "HOCBA_FORWARD_QUEUE")


def queue_of(task: str) -> str:
    """The queue Celery sends `task` to when the caller names none."""
    return app.amqp.router.route({}, task, (), {})["queue"].name


@pytest.mark.skipif(any(os.environ.get(name) for name in OVERRIDES), reason="queues set in the environment")
def test_each_kind_of_work_goes_to_its_own_queue_by_default():
    assert queue_of("signing.tasks.signing_batch_run") == "signing"
    assert queue_of("signing.tasks.signing_batches_resume") == "signing"
    assert queue_of("transcripts.tasks.year_record_pdf_render") == "pdf"
    assert queue_of("registry.tasks.forward_relay") == "forwarding"
    # The sweeps and the rest stay on Celery's default queue.
    assert queue_of("transcripts.tasks.year_record_pdfs_missing") == "celery"
    assert queue_of("portal.tasks.role_assignments_expire") == "celery"
    assert queue_of("portal.tasks.progress_reconcile") == "celery"
