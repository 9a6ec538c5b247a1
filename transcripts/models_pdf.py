"""The rendered PDF of a year record (tenant schema): rendered once, stored with its SHA-256.

A download serves these bytes; nothing re-renders a record that has its PDF
(transcripts.records.pdf.year_record_pdf_render returns the stored row). The PDF embeds the
record's XML as it was stored when the PDF was rendered, and the renderer that made it is kept,
so a later change of WeasyPrint or of the form never changes a copy already handed out.

A record issued by a seal batch gets its PDF from the batch: rendered and signed by the school's
seal as a PDF (PAdES, signing.pades) before the row is created, so the stored bytes are the sealed
ones from the start and never change (`sealed`, `sealed_by`, `sealed_at`). A PDF rendered without
the seal (a record issued outside a batch, or the fallback of the missing-PDF sweep) carries the
signers' marks but no PDF signature.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models_records import YearRecord

__all__ = ["YearRecordPdf"]


class YearRecordPdf(models.Model):
    """One year record version's PDF/A-3b: the bytes, their SHA-256, when and by what."""

    record = models.OneToOneField(
        YearRecord, on_delete=models.PROTECT, related_name="pdf", verbose_name=_("year record")
    )
    pdf = models.BinaryField(_("PDF"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    rendered_at = models.DateTimeField(_("rendered at"), default=timezone.now)
    renderer = models.CharField(_("renderer"), max_length=100)  # "weasyprint 66.0"
    sealed = models.BooleanField(_("sealed"), default=False)  # signed by the school's seal (PAdES)
    sealed_by = models.CharField(_("sealed by"), max_length=255, blank=True)  # the seal's name (CN)
    sealed_at = models.DateTimeField(_("sealed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("year record PDF")
        verbose_name_plural = _("year record PDFs")
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="year_record_pdf_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(sealed=False) | (~Q(sealed_by="") & Q(sealed_at__isnull=False)),
                name="year_record_pdf_sealed_by_whom",
            ),
        ]

    def __str__(self) -> str:
        return f"PDF {self.record_id} ({self.sha256[:12]})"
