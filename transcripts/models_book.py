"""A student's earlier year records, attached by the school that received them (tenant schema).

When a student arrives from another school (a transfer, or grade 5 → grade 6 elsewhere), the
receiving school finds the records that school issued through the public index
(portal.IssuedRecord, by the keyed hash of the personal ID), verifies each one against the index
(SHA-256, schema, personal ID) and keeps a copy of its bytes here, so the student's book reads as
one continuous book whichever school issued each year (transcripts.book). The rows are never
edited or deleted: a trigger (migration 0007) refuses UPDATE and DELETE even in raw SQL. Whether
an attached version is still in force is read from the public index when the book is shown.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["AttachedRecord"]


class AttachedRecord(models.Model):
    """One version of a year record issued by another school, verified and attached to a student."""

    student = models.ForeignKey(
        "schools.Student",
        on_delete=models.PROTECT,
        related_name="attached_records",
        verbose_name=_("student"),
    )
    # As the issuing school was when the record was issued (from the signed document).
    source_school_code = models.CharField(_("issuing school code"), max_length=63)
    source_school_name = models.CharField(_("issuing school"), max_length=200)
    school_year = models.CharField(_("school year"), max_length=9)
    grade = models.PositiveSmallIntegerField(_("grade"))
    class_name = models.CharField(_("class"), max_length=20)
    record_id = models.CharField(_("record id"), max_length=64)
    version = models.PositiveIntegerField(_("version"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    xml = models.BinaryField(_("XML as issued"))
    attached_at = models.DateTimeField(_("attached at"), default=timezone.now)
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("attached by"),
    )

    class Meta:
        verbose_name = _("attached year record")
        verbose_name_plural = _("attached year records")
        ordering = ["student", "school_year", "grade", "record_id", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "record_id", "version"], name="attached_record_once_per_student"
            ),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="attached_record_sha256_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} v{self.version} ({self.source_school_code})"
