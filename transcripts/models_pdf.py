"""The rendered PDF of a year record (tenant schema): rendered once, stored with its SHA-256.

The bytes live in the documents storage (transcripts.records.storage: the filesystem, or S3 in
production), not in PostgreSQL (issue 15: ~100 GiB a year for a province); the row keeps the
object's name, size and SHA-256, and every read checks the bytes against it. The database refuses
any change of a stored row's document (name, hash, size, record, renderer, seal: migration 0015),
and the name carries the hash, so a row can never point at other bytes than the ones it hashed.

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
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models_records import YearRecord
from .records.storage import document_get

__all__ = ["YearRecordPdf", "YearRecordXml"]


class YearRecordPdf(models.Model):
    """One year record version's PDF/A-3b: where its bytes are stored, their SHA-256 and size, when
    and by what it was rendered."""

    record = models.OneToOneField(
        YearRecord, on_delete=models.PROTECT, related_name="pdf", verbose_name=_("year record")
    )
    name = models.CharField(_("stored as"), max_length=255, unique=True)  # in STORAGES["documents"]
    size = models.PositiveIntegerField(_("size (bytes)"))
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
            models.CheckConstraint(
                condition=Q(name__endswith=Concat(models.Value("/"), "sha256", models.Value(".pdf"))),
                name="year_record_pdf_name_of_hash",
            ),
            models.CheckConstraint(condition=Q(size__gt=0), name="year_record_pdf_size_positive"),
        ]

    def __str__(self) -> str:
        return f"PDF {self.record_id} ({self.sha256[:12]})"

    @property
    def pdf(self) -> bytes:
        """The stored bytes, read from the documents storage and checked against `sha256`
        (DocumentUnavailable otherwise: missing, changed, or the storage unreachable)."""
        return document_get(self.name, self.sha256)


class YearRecordXml(models.Model):
    """The issued (sealed) XML of a year record version as handed out for download: a write-once
    copy in the documents storage, stored beside its PDF (the PDF embeds these very bytes).

    The working copy stays in the database (the seal's YearRecordSignature.signed_xml): signing,
    verification, renewals and forwarding read it there. Downloads of an issued version read this
    copy, checked against `sha256`, which the database makes the hash of the seal's signed document
    (migration 0015's trigger): a copy of anything else cannot be recorded.
    """

    record = models.OneToOneField(
        YearRecord, on_delete=models.PROTECT, related_name="xml_copy", verbose_name=_("year record")
    )
    name = models.CharField(_("stored as"), max_length=255, unique=True)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    stored_at = models.DateTimeField(_("stored at"), default=timezone.now)

    class Meta:
        verbose_name = _("issued XML copy")
        verbose_name_plural = _("issued XML copies")
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="year_record_xml_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(name__endswith=Concat(models.Value("/"), "sha256", models.Value(".xml"))),
                name="year_record_xml_name_of_hash",
            ),
            models.CheckConstraint(condition=Q(size__gt=0), name="year_record_xml_size_positive"),
        ]

    def __str__(self) -> str:
        return f"XML {self.record_id} ({self.sha256[:12]})"

    @property
    def xml(self) -> bytes:
        """The stored copy, read from the documents storage and checked against `sha256`."""
        return document_get(self.name, self.sha256)
