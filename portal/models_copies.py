"""The log of every copy of a year record handed out (public schema, domain.md §1).

"Every electronic copy or extract that is handed out is logged and traceable to its origin": a
download of a record's XML or PDF writes one row here before the bytes leave the server, with
who took it, from which school, which record version, in which format, and the SHA-256 of the
very bytes handed out (so a copy found later can be traced to this row). Append-only: a
trigger (migration 0009) refuses UPDATE and DELETE, as for the audit log.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import CopyFormat
from .models import School, User

__all__ = ["CopyFormat", "CopyLog"]


class CopyLog(models.Model):
    """One copy of one year record version handed out: who, when, from where, what bytes."""

    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, verbose_name=_("who"), on_delete=models.PROTECT, related_name="+")
    school = models.ForeignKey(
        School, verbose_name=_("school"), on_delete=models.PROTECT, related_name="copies_handed_out"
    )
    record_id = models.CharField(_("record id"), max_length=64, db_index=True)
    version = models.PositiveIntegerField(_("version"))
    format = models.CharField(_("format"), max_length=3, choices=CopyFormat.choices)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("copy handed out")
        verbose_name_plural = _("copies handed out")
        ordering = ["-at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="copy_log_sha256_hex"),
            models.CheckConstraint(
                condition=Q(format__in=[f.value for f in CopyFormat]), name="copy_log_format_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.record_id} v{self.version} ({self.format})"
