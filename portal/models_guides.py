"""Which first-time guides each user has dismissed (public schema: users are global).

A guide (portal.guides) is shown the first time someone meets a step (opening the grade book,
confirming a class, registering a certificate, signing a batch, sealing). Dismissing it writes
one row here; reopening it deletes the row, so "shown" is simply "no row". Nothing else reads
these rows: they are a preference, not a record, so they carry no audit entry.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import User

# A guide's code as portal.guides names them: lower-case words joined by '_'. The database
# refuses anything else, so a hostile code posted to the dismiss view can never be stored.
GUIDE_CODE_PATTERN = r"^[a-z][a-z_]{0,39}$"


class GuideDismissal(models.Model):
    """One user has dismissed one guide (until they reopen it)."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="guide_dismissals"
    )
    code = models.CharField(_("guide"), max_length=40)
    dismissed_at = models.DateTimeField(_("dismissed at"), default=timezone.now)

    class Meta:
        verbose_name = _("dismissed guide")
        verbose_name_plural = _("dismissed guides")
        constraints = [
            models.UniqueConstraint(fields=["user", "code"], name="guide_dismissal_one_per_user"),
            models.CheckConstraint(
                condition=Q(code__regex=GUIDE_CODE_PATTERN), name="guide_dismissal_code_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.code}"
