"""Progress per school and school year, kept in public for the supervisors (design.md §3).

Province and division pages never query a school's schema: each school's services recount their
part of this row in the same transaction as the change (portal.progress.services.progress_recount,
under the row's lock), and `manage.py progress_reconcile` rebuilds it from the schools and reports
the drift it fixes.

`ProgressWeek` keeps, per ISO week, how much three figures moved that week (classes approved,
records signed by the principal or further, records acknowledged by the Ministry): every change to
a `SchoolProgress` row adds its difference to the current week's row in the same transaction, so
the weeks of a school year always add up to its row, and the closing season can be drawn week by
week from public tables alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import School

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

YEAR_PATTERN = r"^\d{4}-\d{4}$"

# The counters, in the order pages show them, with their labels (portal.progress.selectors).
COUNTERS: dict[str, StrOrPromise] = {
    "students": _("Students"),
    "students_without_personal_id": _("Students without a verified personal ID"),
    "students_waiting_summer": _("Students waiting for the August close"),
    "classes": _("Classes"),
    "classes_books_complete": _("Classes with a complete grade book"),
    "classes_approved": _("Classes approved"),
    "records_draft": _("Records in preparation"),
    "records_confirmed": _("Records confirmed by the homeroom teacher"),
    "records_signed_homeroom": _("Records signed by the homeroom teacher"),
    "records_signed_principal": _("Records signed by the principal"),
    "records_issued": _("Records issued"),
    "records_queued": _("Records queued for the Ministry"),
    "records_acknowledged": _("Records acknowledged by the Ministry"),
    "records_rejected": _("Records rejected by the Ministry"),
}
# The figures the weeks follow: their change is added to the current week (ProgressWeek).
WEEKLY = ("classes_approved", "records_signed", "records_acknowledged")
# Records signed by the principal, or further along (issued, queued, acknowledged, rejected).
SIGNED_COUNTERS = (
    "records_signed_principal",
    "records_issued",
    "records_queued",
    "records_acknowledged",
    "records_rejected",
)


def _counter(name: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(COUNTERS[name], default=0)


class SchoolProgress(models.Model):
    """One school's figures for one school year (the counters above, and rejections by reason)."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    school_year = models.CharField(_("school year"), max_length=9)
    students = _counter("students")
    students_without_personal_id = _counter("students_without_personal_id")
    students_waiting_summer = _counter("students_waiting_summer")
    classes = _counter("classes")
    classes_books_complete = _counter("classes_books_complete")
    classes_approved = _counter("classes_approved")
    records_draft = _counter("records_draft")
    records_confirmed = _counter("records_confirmed")
    records_signed_homeroom = _counter("records_signed_homeroom")
    records_signed_principal = _counter("records_signed_principal")
    records_issued = _counter("records_issued")
    records_queued = _counter("records_queued")
    records_acknowledged = _counter("records_acknowledged")
    records_rejected = _counter("records_rejected")
    # The Ministry's coded reasons for the records rejected now: {"schema": 3, "signature": 1}.
    rejections = models.JSONField(_("rejections by reason"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("school progress")
        verbose_name_plural = _("school progress")
        ordering = ["school_id", "-school_year"]
        constraints = [
            models.UniqueConstraint(fields=["school", "school_year"], name="school_progress_one_per_year"),
            models.CheckConstraint(
                condition=Q(school_year__regex=YEAR_PATTERN), name="school_progress_year_format"
            ),
        ]
        indexes = [models.Index(fields=["school_year", "school"], name="school_progress_by_year")]

    def __str__(self) -> str:
        return f"{self.school_id} {self.school_year}"

    @property
    def records_signed(self) -> int:
        return sum(getattr(self, name) for name in SIGNED_COUNTERS)


class ProgressWeek(models.Model):
    """How much a school's weekly figures moved in one ISO week (Monday's date) of a school year."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+", verbose_name=_("school"))
    school_year = models.CharField(_("school year"), max_length=9)
    week = models.DateField(_("week starting"))
    classes_approved = models.IntegerField(_("classes approved"), default=0)
    records_signed = models.IntegerField(_("records signed by the principal"), default=0)
    records_acknowledged = models.IntegerField(_("records acknowledged by the Ministry"), default=0)

    class Meta:
        verbose_name = _("week of progress")
        verbose_name_plural = _("weeks of progress")
        ordering = ["school_id", "week"]
        constraints = [
            models.UniqueConstraint(fields=["school", "school_year", "week"], name="progress_week_unique"),
            models.CheckConstraint(condition=Q(week__week_day=2), name="progress_week_starts_monday"),
        ]
        indexes = [models.Index(fields=["school_year", "week"], name="progress_week_by_year")]

    def __str__(self) -> str:
        return f"{self.school_id} {self.school_year} {self.week}"
