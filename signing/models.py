"""Signing certificates and signing batches (public schema).

- A `SigningCertificate` is a certificate registered with an account (a teacher's, a principal's)
  or with a school (its seal), with where its private key is: a PKCS#12 file stored encrypted with
  the deployment key, a PKCS#11 token, or a CSC remote-signing credential. Registration checks it
  once (signing.services); every signature checks it again.
- A `SigningBatch` is one action of one signer over many year records: the homeroom teacher signs
  the class, the principal a class or the school, the clerk seals. It is confirmed once (a PIN,
  an OTP from the remote-signing service, two-factor for principals), then a Celery job signs
  item after item. The database is the source of truth: the job holds a lease on the batch, and
  a batch whose lease ran out (a worker that died) is taken up again by the resume sweep.

The signatures themselves are stored beside the records in the school's schema
(transcripts.YearRecordSignature), each in the same transaction as its batch item's outcome, so
an item is signed exactly once whatever happens to the worker.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import School
from transcripts.choices import SignatureStep

__all__ = [
    "BatchState",
    "CertificateBackend",
    "ItemState",
    "SigningBatch",
    "SigningBatchItem",
    "SigningCertificate",
    "SigningStep",
]


class CertificateBackend(models.TextChoices):
    PKCS12 = "pkcs12", _("Key file (PKCS#12)")
    PKCS11 = "pkcs11", _("Token or HSM (PKCS#11)")
    CSC = "csc", _("Remote signing service")


# Who signs, in the order of signing: the one list of the steps lives with the signatures
# (transcripts.choices); a batch signs one of them.
SigningStep = SignatureStep


class SigningCertificate(models.Model):
    """A certificate that may sign year records, registered with a person or with a school's seal."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="signing_certificates",
        verbose_name=_("holder"),
    )
    school = models.ForeignKey(
        School,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="seal_certificates",
        verbose_name=_("school (seal)"),
    )
    backend = models.CharField(_("where the key is"), max_length=10, choices=CertificateBackend.choices)
    certificate = models.BinaryField(_("certificate (DER)"))
    chain_pem = models.TextField(_("intermediate certificates (PEM)"), blank=True)
    fingerprint = models.CharField(_("SHA-256 fingerprint"), max_length=64)
    serial = models.CharField(_("serial number"), max_length=64)
    subject_name = models.CharField(_("name in the certificate"), max_length=255)
    subject_title = models.CharField(_("title in the certificate"), max_length=255, blank=True)
    issuer_name = models.CharField(_("issuer"), max_length=255)
    not_before = models.DateTimeField(_("valid from"))
    not_after = models.DateTimeField(_("valid until"))
    # PKCS#12: the file, encrypted with the deployment key (signing.backends.pkcs12.pkcs12_seal).
    sealed_pkcs12 = models.BinaryField(null=True, blank=True, editable=False)
    # PKCS#11: the token and the key's label on it.
    token_label = models.CharField(max_length=64, blank=True)
    key_label = models.CharField(max_length=64, blank=True)
    # CSC: the credential at the remote-signing service, and the user id it knows the signer by.
    csc_user_id = models.CharField(max_length=128, blank=True)
    csc_credential_id = models.CharField(max_length=128, blank=True)
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("registered by")
    )
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("signing certificate")
        verbose_name_plural = _("signing certificates")
        ordering = ["-registered_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, school__isnull=True)
                | Q(user__isnull=True, school__isnull=False),
                name="signing_certificate_one_holder",
            ),
            # A certificate is registered with one holder at a time: never someone else's.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(removed_at__isnull=True),
                name="signing_certificate_registered_once",
            ),
            models.CheckConstraint(
                condition=Q(fingerprint__regex=r"^[0-9a-f]{64}$"), name="signing_certificate_fingerprint_hex"
            ),
            models.CheckConstraint(
                condition=Q(backend="pkcs12", sealed_pkcs12__isnull=False)
                | Q(backend="pkcs11") & ~Q(token_label="") & ~Q(key_label="")
                | Q(backend="csc") & ~Q(csc_credential_id=""),
                name="signing_certificate_key_located",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_name} ({self.serial})"

    @property
    def is_active(self) -> bool:
        return self.removed_at is None


class BatchState(models.TextChoices):
    AWAITING_CONFIRMATION = "awaiting", _("Waiting for confirmation")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Signing")
    DONE = "done", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")


class ItemState(models.TextChoices):
    PENDING = "pending", _("Waiting")
    DONE = "done", _("Signed")
    FAILED = "failed", _("Failed")


class SigningBatch(models.Model):
    """One signer's action over many year records of one school."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="signing_batches")
    step = models.CharField(_("step"), max_length=20, choices=SigningStep.choices)
    # The class the batch was started from (a school class's id in the school's schema), or None
    # for a batch over the whole school; its name is kept for display.
    class_pk = models.PositiveIntegerField(null=True, blank=True)
    scope_label = models.CharField(_("records"), max_length=255)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="signing_batches",
        verbose_name=_("signer"),
    )
    certificate = models.ForeignKey(
        SigningCertificate, on_delete=models.PROTECT, related_name="batches", verbose_name=_("certificate")
    )
    state = models.CharField(_("state"), max_length=10, choices=BatchState.choices)
    # What unlocks the key while the batch runs (a PIN, a CSC SAD), encrypted with the deployment
    # key; erased when the batch ends or is cancelled.
    secret = models.BinaryField(null=True, blank=True, editable=False)
    secret_expires_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    # A paused batch: the key's service failed in a way worth retrying (signing.backends.BackendError
    # with retryable=True). No worker holds it; the sweep queues it again from next_attempt_at.
    # retry_count counts consecutive failures since retrying_since; a success clears all four.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveSmallIntegerField(default=0)
    retrying_since = models.DateTimeField(null=True, blank=True)
    retry_reason = models.TextField(blank=True)
    # The resume sweep queued a message for the batch; it queues none again before this time (a
    # claim clears it), so a stale batch gets one message per sweep period, not one per sweep.
    enqueued_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("started at"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("signing batch")
        verbose_name_plural = _("signing batches")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "lease_until"], name="signing_batch_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in BatchState]), name="signing_batch_state_known"
            ),
            models.CheckConstraint(
                condition=Q(step__in=[s.value for s in SigningStep]), name="signing_batch_step_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_step_display()}: {self.scope_label}"


class SigningBatchItem(models.Model):
    """One year record version in a batch, and what became of it."""

    batch = models.ForeignKey(SigningBatch, on_delete=models.CASCADE, related_name="items")
    record_pk = models.PositiveIntegerField()  # transcripts.YearRecord in the batch's school schema
    record_id = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    student_name = models.CharField(max_length=255)
    position = models.PositiveIntegerField()  # order within the batch (class, then roll number)
    state = models.CharField(max_length=10, choices=ItemState.choices, default=ItemState.PENDING)
    reason = models.TextField(blank=True)  # why it failed, in the signer's words
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The moment the signer's membership in the school ends (the start of the day after its end
    # date, in the province's time), copied when the batch starts; None when it has no end. A
    # contract teacher's batch started before that day cannot sign after it (issue 14): the
    # runner refuses first, and the check below refuses an item marked signed at or after it.
    # The copy is per batch, not per certificate: a person's certificate serves all their
    # schools, each membership with its own end, and a contract that is renewed moves the end.
    sign_before = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "record_pk"], name="signing_item_record_once"),
            models.CheckConstraint(
                condition=~Q(state="done")
                | Q(sign_before__isnull=True)
                | Q(finished_at__isnull=False, finished_at__lt=F("sign_before")),
                name="signing_item_signed_before_membership_end",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in ItemState]), name="signing_item_state_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} v{self.version}: {self.state}"
