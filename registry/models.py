"""What happens to an issued record outside its school: the outbox to the Ministry (public schema).

design.md §5: a row is written in the same transaction that issues, corrects or revokes a version
(transcripts calls registry through transcripts.hooks, registered by registry.apps). The row is
the source of truth for its delivery; Celery only wakes the relay (registry.forwarding).

Database guards (migration 0002): what a message says (its school, record, version, kind, key,
document) never changes once written, and no message is ever deleted: an UPDATE of those columns
or a DELETE is refused by a trigger. The document is the one exception: it is dropped (set to
NULL) once the Ministry has acknowledged the message, to keep the table small; its key remains.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import School

from .choices import MessageKind, OutboxState


class OutboxMessage(models.Model):
    """One message to the Ministry's repository: submit, replace or cancel one record version."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    record_id = models.CharField(_("record id"), max_length=120)
    version = models.PositiveIntegerField(_("version"))
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices)
    replaces_version = models.PositiveIntegerField(_("replaces version"), null=True, blank=True)
    # The SHA-256 of the signed payload (docs/ministry-contract.md): the same message, the same key.
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    document = models.BinaryField(_("sealed document"), null=True, blank=True)
    student_code = models.CharField(_("student code"), max_length=20)
    # From the signed document, or from the student once the number is verified (then sent).
    personal_id = models.CharField(  # noqa: DJ001 -- NULL: no number yet; the CHECK admits NULL or 12 digits
        _("personal ID number"), max_length=12, null=True, blank=True
    )
    reason = models.TextField(_("reason"), blank=True)  # a revocation's
    state = models.CharField(_("state"), max_length=20, choices=OutboxState.choices, db_index=True)
    attempts = models.PositiveIntegerField(_("failed attempts"), default=0)
    polls = models.PositiveIntegerField(_("verdict polls"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    lease_owner = models.CharField(_("held by"), max_length=100, blank=True)
    lease_until = models.DateTimeField(_("held until"), null=True, blank=True)
    receipt_id = models.CharField(_("receipt"), max_length=100, blank=True)
    last_status = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    reasons = models.JSONField(_("the Ministry's reasons"), default=list, blank=True)
    created_at = models.DateTimeField(_("queued at"), default=timezone.now)
    sent_at = models.DateTimeField(_("received by the Ministry at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("verdict at"), null=True, blank=True)
    replayed_at = models.DateTimeField(_("last replayed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message to the Ministry")
        verbose_name_plural = _("messages to the Ministry")
        ordering = ["pk"]
        indexes = [
            # The relay's claim: due rows by time (registry.forwarding._claim).
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state__in=["pending", "sent"]),
                name="outbox_due",
            ),
            models.Index(fields=["record_id", "id"], name="outbox_record_order"),
            models.Index(fields=["school", "state"], name="outbox_school_state"),
            # The operators' page: throughput (verdicts of the last hour) and the latest errors.
            models.Index(fields=["decided_at"], name="outbox_decided_at"),
            models.Index(fields=["last_attempt_at"], name="outbox_last_attempt_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "record_id", "version"], name="outbox_one_message_per_event"
            ),
            models.CheckConstraint(condition=Q(kind__in=MessageKind.values), name="outbox_kind_known"),
            models.CheckConstraint(condition=Q(state__in=OutboxState.values), name="outbox_state_known"),
            models.CheckConstraint(
                condition=Q(idempotency_key__regex=r"^[0-9a-f]{64}$"), name="outbox_key_hex"
            ),
            models.CheckConstraint(
                condition=Q(personal_id__isnull=True) | Q(personal_id__regex=r"^[0-9]{12}$"),
                name="outbox_personal_id_12_digits",
            ),
            # A submit or replace carries its document until acknowledged; a cancel never does.
            models.CheckConstraint(
                condition=Q(kind="cancel", document__isnull=True)
                | ~Q(kind="cancel") & (Q(document__isnull=False) | Q(state="acknowledged")),
                name="outbox_document_by_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="replace", replaces_version__isnull=False)
                | ~Q(kind="replace") & Q(replaces_version__isnull=True),
                name="outbox_replace_names_a_version",
            ),
            # Nothing goes without a personal ID; a sent message has its receipt.
            models.CheckConstraint(
                condition=Q(state="waiting_personal_id") | Q(state="void") | Q(personal_id__isnull=False),
                name="outbox_personal_id_before_sending",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["sent", "acknowledged", "rejected"]) | ~Q(receipt_id=""),
                name="outbox_receipt_once_sent",
            ),
            models.CheckConstraint(
                condition=~Q(state="sending") | Q(lease_until__isnull=False) & ~Q(lease_owner=""),
                name="outbox_sending_is_leased",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.record_id} v{self.version}: {self.get_state_display()}"


from .models_api import ApiCall, ConsentIssuer, PartnerClient, PartnerKey  # noqa: E402, F401 -- the partner API's tables
from .models_archive import ArchiveExport, ArchiveScopeKind, ArchiveState  # noqa: E402, F401 -- archive exports
from .models_privacy import PersonalDataExport, PersonalDataExportChannel  # noqa: E402, F401 -- personal data exports
