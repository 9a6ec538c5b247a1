"""School data, in each school's own schema."""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class SchoolYear(models.Model):
    """A school year ("2025-2026"). Rule sets and records are chosen by it."""

    code = models.CharField(_("school year"), max_length=9, unique=True)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    is_current = models.BooleanField(_("current"), default=False)

    class Meta:
        verbose_name = _("school year")
        verbose_name_plural = _("school years")
        ordering = ["-starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gt=F("starts_on")), name="school_year_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(code__regex=r"^\d{4}-\d{4}$"), name="school_year_code_format"),
            models.UniqueConstraint(
                fields=["is_current"], condition=Q(is_current=True), name="one_current_year"
            ),
        ]

    def __str__(self) -> str:
        return self.code
