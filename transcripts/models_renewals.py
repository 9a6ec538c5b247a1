"""Renewed copies of issued year records (tenant schema): the issued document with archive
timestamps added (XAdES-LTA, signing.longterm), one row per renewal, append-only.

The issued (sealed) document stays where it is (the seal's YearRecordSignature: the public index
keeps its SHA-256, the PDF embeds it, the Ministry received it). Before the certificate of the
newest timestamp in a record expires, `manage.py archive_timestamp` adds an archive timestamp to
every signature and stores the result here; the latest renewal is what verifies in the long run
(transcripts.records.services.year_record_archived_document). Migration 0014: UPDATE and DELETE
refused; the SHA-256 is the document's; renewal n follows n-1; the record is issued (it has its
seal) and the document carries the record's content byte for byte.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models_records import YearRecord

__all__ = ["YearRecordRenewal"]


class YearRecordRenewal(models.Model):
    record = models.ForeignKey(
        YearRecord, on_delete=models.PROTECT, related_name="renewals", verbose_name=_("year record")
    )
    sequence = models.PositiveSmallIntegerField(_("renewal"))
    renewed_xml = models.BinaryField(_("renewed document"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    renewed_at = models.DateTimeField(_("renewed at"), default=timezone.now)
    # Until when the newest timestamp in it can be relied on (the earliest over its signatures).
    proof_until = models.DateTimeField(_("proof of time holds until"), null=True, blank=True)

    class Meta:
        verbose_name = _("renewed year record")
        verbose_name_plural = _("renewed year records")
        constraints = [
            models.UniqueConstraint(fields=["record", "sequence"], name="year_record_renewal_sequence"),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="year_record_renewal_sha256_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} renewal {self.sequence}"
