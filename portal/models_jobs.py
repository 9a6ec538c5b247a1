"""The PDFs due, as a fact in the public schema (issue 15): the queue of PDF work is a table, not
the broker's lists.

One row per year record (in its school's schema) whose PDF has yet to be made. It is written when
the record is issued, in the same transaction (transcripts.records.pdf through
portal.jobs.services), and by nothing else; it is deleted in the short transaction that stores the
PDF. Between the two, who does what is said here:

- `queued_until`: a render message is on its way (sent at issue, or by the sweep); the sweep leaves
  the row alone until then, so a backlog in the broker never gets duplicates from the sweep;
- `lease_owner` / `lease_until`: a worker holds the row while it renders (outside any lock); a
  worker killed mid-render lets the lease run out and the sweep queues the row again;
- `attempts`, `last_error`, `due_at`: a render that raised is tried again after a back-off, with
  its error kept for the operators (docs/operations.md, "Workers and queues");
- `by_batch`: the record was sealed by a signing batch, whose second phase renders and seals its
  PDF (signing.services.pdfs); the row is due only HOCBA_PDF_SEAL_GRACE_SECONDS after `due_at`.

The sweep (portal.jobs.services.pdf_due_take) reads only this table: it never visits a school's
schema to find work.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import School


class PdfDue(models.Model):
    """A year record whose PDF is due: the record's primary key in its school's schema."""

    school = models.ForeignKey(School, verbose_name=_("school"), on_delete=models.CASCADE, related_name="+")
    record_pk = models.PositiveIntegerField(_("record"))  # transcripts.YearRecord in the school's schema
    # When it may be queued (the issue; after a failure, the back-off's end).
    due_at = models.DateTimeField(_("due at"), default=timezone.now)
    by_batch = models.BooleanField(_("sealed by a batch"), default=False)
    queued_until = models.DateTimeField(_("queued until"), null=True, blank=True)
    lease_owner = models.CharField(_("worker"), max_length=100, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("PDF due")
        verbose_name_plural = _("PDFs due")
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["due_at"], name="pdf_due_at")]
        constraints = [
            models.UniqueConstraint(fields=["school", "record_pk"], name="pdf_due_once_per_record"),
            # A lease is a worker and an expiry, or neither.
            models.CheckConstraint(
                condition=Q(lease_owner="", lease_until__isnull=True)
                | (~Q(lease_owner="") & Q(lease_until__isnull=False)),
                name="pdf_due_lease_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.school_id}:{self.record_pk}"
