from celery import shared_task

from . import services


@shared_task
def role_assignments_expire() -> int:
    """Hourly: record the assignments that passed their end date (beat schedule in settings)."""
    return services.role_assignments_expire()
