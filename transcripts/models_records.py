"""Year records (tenant schema): the signed document of one student's year, its versions and history.

The row holds the canonical XML (transcripts.document) as built from the snapshot, its SHA-256,
and the lifecycle status of domain.md §5. Once the first signature exists the content is frozen
by a database trigger (migration 0005), so neither the code nor a raw UPDATE can change it; a
mistake is fixed by a new version that supersedes this one (transcripts.records.services).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import SIGNING_ORDER, SignatureStep

__all__ = [
    "FROZEN_STATUSES",
    "LIVE_STATUSES",
    "YearRecord",
    "YearRecordEvent",
    "YearRecordSignature",
    "YearRecordStatus",
]


class YearRecordStatus(models.TextChoices):
    """domain.md §5, in lifecycle order."""

    DRAFT = "draft", _("Draft")
    DATA_COMPLETE = "data_complete", _("Data complete")
    CONFIRMED = "confirmed", _("Confirmed by the homeroom teacher")
    SIGNED_HOMEROOM = "signed_homeroom", _("Signed by the homeroom teacher")
    SIGNED_PRINCIPAL = "signed_principal", _("Signed by the principal")
    ISSUED = "issued", _("Issued")
    QUEUED = "queued", _("Queued for the Ministry")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged by the Ministry")
    REJECTED = "rejected", _("Rejected by the Ministry")
    SUPERSEDED = "superseded", _("Superseded")
    REVOKED = "revoked", _("Revoked")


S = YearRecordStatus
# The first signature exists (or the version is closed): the content is frozen by the trigger.
# Keep in step with the trigger's list in migration 0005.
FROZEN_STATUSES = frozenset(
    {
        S.SIGNED_HOMEROOM,
        S.SIGNED_PRINCIPAL,
        S.ISSUED,
        S.QUEUED,
        S.ACKNOWLEDGED,
        S.REJECTED,
        S.SUPERSEDED,
        S.REVOKED,
    }
)
# Versions that count: neither replaced nor withdrawn.
LIVE_STATUSES = frozenset(set(S) - {S.SUPERSEDED, S.REVOKED})


class YearRecord(models.Model):
    """One version of one student's year record: the canonical XML bytes and where it stands.

    Two partial unique constraints keep a record's versions in order: at most one version in
    force (any live status but draft), and at most one correction pending (a draft), which
    coexists with the version it will replace until the principal approves it. Creation of a
    first version starts at "data complete"; only corrections start as drafts.
    """

    enrolment = models.ForeignKey(
        "schools.Enrolment",
        on_delete=models.PROTECT,
        related_name="year_records",
        verbose_name=_("enrolment"),
    )
    record_id = models.CharField(_("record id"), max_length=64)  # madinhdanhhocba
    version = models.PositiveIntegerField(_("version"))
    supersedes = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="corrections",
        verbose_name=_("supersedes"),
    )
    status = models.CharField(_("status"), max_length=20, choices=YearRecordStatus.choices)
    xml = models.BinaryField(_("canonical XML"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    correction_reason = models.TextField(_("reason for the correction"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    status_changed_at = models.DateTimeField(_("status changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("year record")
        verbose_name_plural = _("year records")
        ordering = ["record_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["record_id", "version"], name="year_record_version_unique"),
            models.UniqueConstraint(
                fields=["record_id"],
                # Written as inequalities, not NOT IN: PostgreSQL prints an IN list differently
                # once a cloned schema re-parses it, and the clone test compares index texts.
                condition=~Q(status="draft") & ~Q(status="superseded") & ~Q(status="revoked"),
                name="year_record_one_in_force",
            ),
            models.UniqueConstraint(
                fields=["record_id"], condition=Q(status="draft"), name="year_record_one_pending_correction"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="year_record_version_from_1"),
            models.CheckConstraint(
                condition=Q(version=1, supersedes__isnull=True) | Q(version__gt=1, supersedes__isnull=False),
                name="year_record_correction_names_its_version",
            ),
            models.CheckConstraint(
                condition=Q(supersedes__isnull=True) | ~Q(correction_reason=""),
                name="year_record_correction_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="year_record_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in YearRecordStatus]), name="year_record_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} v{self.version}"

    @property
    def is_frozen(self) -> bool:
        """The content can no longer change (the trigger refuses it)."""
        return self.status in FROZEN_STATUSES


class YearRecordEvent(models.Model):
    """One transition of a year record: from, to, who, when, why. Append-only (a trigger)."""

    record = models.ForeignKey(YearRecord, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=20, choices=YearRecordStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=YearRecordStatus.choices)
    # None: the system (a background task), for the steps the transition table allows it.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    note = models.TextField(blank=True)
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("year record event")
        verbose_name_plural = _("year record events")
        ordering = ["record", "at", "id"]

    def __str__(self) -> str:
        return f"{self.record_id}: {self.from_status or '-'} -> {self.to_status}"


def _steps_in_order() -> Q:
    """Each signing step at its own position: Q(position=1, role="homeroom_teacher") | ..."""
    condition = Q()
    for position, step in enumerate(SIGNING_ORDER, start=1):
        condition |= Q(position=position, role=step.value)
    return condition


class YearRecordSignature(models.Model):
    """One signature of a year record version: the whole document as it stands after it.

    The record's own `xml` is the unsigned canonical document and never changes once signed; each
    signature appends to <chuky>, so the document after signature n is stored here, with its hash,
    the signer and the certificate. The latest one is the record's current document (the issued
    document once the seal is on). Append-only, and checked by a trigger (migration 0008): the
    positions follow each other, the hash is the hash of the bytes, and the signed document
    carries the record's content byte for byte.
    """

    record = models.ForeignKey(YearRecord, on_delete=models.PROTECT, related_name="signatures")
    position = models.PositiveSmallIntegerField()  # its step's place in SIGNING_ORDER, from 1
    role = models.CharField(max_length=20, choices=SignatureStep.choices)
    signed_xml = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        on_delete=models.PROTECT,
        related_name="+",
    )  # who signed (for the seal: who applied it)
    signer_name = models.CharField(max_length=255)  # as in the certificate
    signer_title = models.CharField(max_length=255, blank=True)
    certificate_fingerprint = models.CharField(max_length=64)
    certificate_serial = models.CharField(max_length=64)
    signed_at = models.DateTimeField(default=timezone.now)
    batch_item_pk = models.PositiveIntegerField(null=True, blank=True)  # signing.SigningBatchItem

    class Meta:
        verbose_name = _("year record signature")
        verbose_name_plural = _("year record signatures")
        ordering = ["record", "position"]
        constraints = [
            models.UniqueConstraint(fields=["record", "position"], name="year_record_signature_once"),
            models.CheckConstraint(
                condition=Q(position__gte=1, position__lte=len(SIGNING_ORDER)),
                name="year_record_signature_position",
            ),
            models.CheckConstraint(
                condition=_steps_in_order(),
                name="year_record_signature_role_in_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record} #{self.position} {self.role}"
