from celery import shared_task

from . import services
from .progress import services as progress_services


@shared_task
def role_assignments_expire() -> int:
    """Hourly: record the assignments that passed their end date (beat schedule in settings)."""
    return services.role_assignments_expire()


@shared_task
def progress_reconcile() -> int:
    """Nightly: recount every school's progress rows; returns how many drifted (each audited)."""
    return len(progress_services.progress_reconcile())
