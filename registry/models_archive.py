"""The Department's archive exports (public schema): one row per archive asked for, and its file.

A province's or a division's archive is too big to build in a request: the request makes a row
(pending), a Celery job (registry.tasks.archive_export_run) builds the ZIP under
settings.HOCBA_ARCHIVE_DIR and marks the row done (with the file's size and SHA-256 and the
manifest's SHA-256, which the keeper writes down apart from the archive) or failed with why.
A school's own archive is small enough to stream in its request and has no row (the audit keeps it).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import Division


class ArchiveScopeKind(models.TextChoices):
    PROVINCE = "province", _("The whole province")
    DIVISION = "division", _("A division")


class ArchiveState(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Being written")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")


class ArchiveExport(models.Model):
    """One archive of a school year's issued records, asked for on the Department's page."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    scope = models.CharField(_("scope"), max_length=10, choices=ArchiveScopeKind.choices)
    division = models.ForeignKey(
        Division,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("division"),
    )
    school_year = models.CharField(_("school year"), max_length=9)
    state = models.CharField(
        _("state"), max_length=10, choices=ArchiveState.choices, default=ArchiveState.PENDING
    )
    # The file's name inside HOCBA_ARCHIVE_DIR (made by the portal, never from input).
    file_name = models.CharField(_("file"), max_length=200, blank=True)
    size = models.BigIntegerField(_("size in bytes"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64, blank=True)
    manifest_sha256 = models.CharField(_("SHA-256 of the manifest"), max_length=64, blank=True)
    records = models.PositiveIntegerField(_("records"), null=True, blank=True)
    missing = models.PositiveIntegerField(_("left out"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("archive export")
        verbose_name_plural = _("archive exports")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope="province", division__isnull=True)
                | Q(scope="division", division__isnull=False),
                name="archive_export_scope_matches_division",
            ),
            models.CheckConstraint(
                condition=Q(state__in=ArchiveState.values), name="archive_export_state_known"
            ),
            models.CheckConstraint(
                condition=Q(school_year__regex=r"^[0-9]{4}-[0-9]{4}$"),
                name="archive_export_school_year_format",
            ),
            models.CheckConstraint(
                condition=~Q(state="done") | (~Q(file_name="") & Q(sha256__regex=r"^[0-9a-f]{64}$")),
                name="archive_export_done_has_its_file",
            ),
        ]

    def __str__(self) -> str:
        where = self.division.name if self.division_id and self.division else _("the province")
        return f"{self.school_year} · {where} · {self.get_state_display()}"
