"""The Celery app. Every task carries its school schema (tenant-schemas-celery), design.md §3."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("hocba")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
