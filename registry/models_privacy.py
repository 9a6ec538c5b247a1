"""The log of personal data exports (public schema): a student's data handed to them on request.

The Personal Data Protection Law (Luật Bảo vệ dữ liệu cá nhân 2025, in force 1 January 2026)
gives the data subject (the student, or the parent or guardian of a minor) the right to obtain
their personal data; the school (the controller) provides it. Each export writes one row here, in
the same transaction that decides it and after its ZIP is whole (registry.privacy): a failed
export leaves no row, and every row names a ZIP that was handed over, by its SHA-256.

Append-only: a trigger (migration 0006) refuses UPDATE and DELETE, as for the audit log.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import School, User

__all__ = ["PersonalDataExport", "PersonalDataExportChannel"]

REASON_MAX_LENGTH = 300


class PersonalDataExportChannel(models.TextChoices):
    """Where the export was made: a school's student page, or the Department's command."""

    PAGE = "page", _("The student's page in the school")
    COMMAND = "command", _("The Department's command (across schools)")


class PersonalDataExport(models.Model):
    """One export of one person's data: who made it, when, why, for whom, and what was handed over."""

    reference = models.UUIDField(_("export reference"), default=uuid.uuid4, unique=True, editable=False)
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, verbose_name=_("who"), on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("made from"), max_length=10, choices=PersonalDataExportChannel.choices)
    # The written request's number, or the reason: required, one line, shown in the access log.
    reason = models.CharField(_("request reference or reason"), max_length=REASON_MAX_LENGTH)
    # The school whose page it was made from (null when the Department exported across schools).
    school = models.ForeignKey(
        School, verbose_name=_("school"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Whose data: the keyed hash of the personal ID (portal.selectors.personal_id_digest; empty
    # without a verified number), and every school student covered, as "<school code>/<student code>".
    personal_id_digest = models.CharField(_("personal ID (keyed hash)"), max_length=64, blank=True)
    students = ArrayField(models.CharField(max_length=64), verbose_name=_("students covered"))
    sha256 = models.CharField(_("SHA-256 of the ZIP"), max_length=64)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    files = models.PositiveIntegerField(_("files"))
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("personal data export")
        verbose_name_plural = _("personal data exports")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["personal_id_digest"], name="privacy_export_digest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="privacy_export_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(personal_id_digest="") | Q(personal_id_digest__regex=r"^[0-9a-f]{64}$"),
                name="privacy_export_personal_id_hashed",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="privacy_export_reason_given"),
            models.CheckConstraint(condition=~Q(students=[]), name="privacy_export_names_a_student"),
            models.CheckConstraint(
                condition=Q(channel__in=[c.value for c in PersonalDataExportChannel]),
                name="privacy_export_channel_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {', '.join(self.students)}"
