"""The public index of issued year records, and the log of every verification (public schema).

The index lets anyone verify a record without knowing which school holds it (the QR code, an
uploaded file, a typed record id), and a receiving school find a student's earlier records. It
mirrors what the school's YearRecord says (issued, superseded, revoked) and is written by the
lifecycle services in the same transaction as the change (transcripts.records.services). The
student's personal ID is kept only as a keyed hash (portal.selectors.personal_id_digest).

Each row carries its verification code (issue 9, finding 7): 80 random bits, printed on the PDF and
in its QR code, without which the public page shows nothing of the record. Record ids are sequential
and guessable; the code is what makes the public link a capability. It is made when the row is
made (portal.services.issued_record_add), never derived from the id.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .choices import (
    VERIFICATION_CODE_LENGTH,
    IssuedRecordStatus,
    VerificationMethod,
    VerificationOutcome,
)
from .models import School

__all__ = [
    "IssuedRecord",
    "IssuedRecordStatus",
    "VerificationLog",
    "VerificationMethod",
    "VerificationOutcome",
]


class IssuedRecord(models.Model):
    """One issued version of a year record: where it lives, its hash, and whether it still counts."""

    school = models.ForeignKey(
        School, verbose_name=_("school"), on_delete=models.PROTECT, related_name="issued_records"
    )
    school_year = models.CharField(_("school year"), max_length=9)
    record_id = models.CharField(_("record id"), max_length=64)
    version = models.PositiveIntegerField(_("version"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(_("status"), max_length=20, choices=IssuedRecordStatus.choices)
    issued_at = models.DateTimeField(_("issued at"))
    status_changed_at = models.DateTimeField(_("status changed at"))
    # HMAC-SHA256 of the 12-digit personal ID (salted_hmac, keyed by SECRET_KEY); empty when the
    # student had only a temporary code. Never the number itself.
    personal_id_digest = models.CharField(max_length=64, blank=True, db_index=True)
    student_code = models.CharField(_("student code"), max_length=31)
    # The 16 symbols without their dashes (shown as K7QX-9M2P-...: verification_code_display).
    verification_code = models.CharField(
        _("verification code"), max_length=VERIFICATION_CODE_LENGTH, editable=False
    )

    class Meta:
        verbose_name = _("issued record")
        verbose_name_plural = _("issued records")
        ordering = ["record_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["record_id", "version"], name="issued_record_version_unique"),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="issued_record_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(personal_id_digest="") | Q(personal_id_digest__regex=r"^[0-9a-f]{64}$"),
                name="issued_record_personal_id_hashed",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in IssuedRecordStatus]),
                name="issued_record_status_known",
            ),
            models.UniqueConstraint(
                fields=["verification_code"], name="issued_record_verification_code_unique"
            ),
            models.CheckConstraint(
                condition=Q(verification_code__regex=r"^[0-9A-HJKMNP-TV-Z]{16}$"),
                name="issued_record_verification_code_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} v{self.version}"

    def get_absolute_url(self) -> str:
        """The public page of this version, with its code: what the QR code and internal links open."""
        from django.urls import reverse

        return (
            reverse("registry:verify_record", args=[self.record_id, self.version])
            + "?code="
            + self.verification_code_display
        )

    @property
    def verification_code_display(self) -> str:
        """The code as printed: four groups of four, K7QX-9M2P-4DHT-W8RC."""
        code = self.verification_code
        return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


class VerificationLog(models.Model):
    """One verification, whatever its outcome (domain.md §1). Who asked is kept only as a hash."""

    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    method = models.CharField(_("how"), max_length=20, choices=VerificationMethod.choices)
    record_id = models.CharField(_("record id"), max_length=64, blank=True)
    version = models.PositiveIntegerField(_("version"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=VerificationOutcome.choices)
    # Why not found or refused: "too_large", "not_xml", "dtd", "invalid", "no_attachment",
    # "mismatch", "rate_limited", ...
    reason = models.CharField(_("reason"), max_length=32, blank=True)
    # The record found, if any (the index row, not a copy of it).
    issued_record = models.ForeignKey(
        IssuedRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="verifications"
    )
    client_digest = models.CharField(max_length=64, blank=True)
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("verification")
        verbose_name_plural = _("verification log")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.method} {self.record_id} v{self.version}: {self.outcome}"
