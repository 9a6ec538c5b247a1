"""Assessments (tenant schema): scores, levels, comments, conduct, and the audit of every change."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .choices import CommentLevel, PrimaryLevel, PrimaryPeriod, QualityLevel, ResultLevel

SCORE_FIELDS = ("regular_1", "regular_2", "regular_3", "regular_4", "mid", "end")


def _score_field(label):
    return models.DecimalField(label, max_digits=3, decimal_places=1, null=True, blank=True)


def _score_range(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{name}__isnull": True})
        | Q(**{f"{name}__gte": Decimal(0), f"{name}__lte": Decimal(10)}),
        name=f"%(class)s_{name}_0_to_10",
    )


class SubjectTermScores(models.Model):
    """TT22/TT43: one student's scores (or Đ/CĐ) in one subject for one term; each cell saved alone."""

    enrolment = models.ForeignKey("schools.Enrolment", on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey("schools.Subject", on_delete=models.PROTECT, related_name="+")
    term = models.PositiveSmallIntegerField(_("term"))
    regular_1 = _score_field(_("regular 1"))
    regular_2 = _score_field(_("regular 2"))
    regular_3 = _score_field(_("regular 3"))
    regular_4 = _score_field(_("regular 4"))
    mid = _score_field(_("mid-term"))
    end = _score_field(_("end-term"))
    level = models.CharField(_("level"), max_length=2, choices=CommentLevel.choices, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("subject scores")
        verbose_name_plural = _("subject scores")
        constraints = [
            models.UniqueConstraint(fields=["enrolment", "subject", "term"], name="scores_one_row_per_term"),
            models.CheckConstraint(condition=Q(term__in=[1, 2]), name="scores_term_1_or_2"),
            *[_score_range(name) for name in SCORE_FIELDS],
        ]

    def __str__(self) -> str:
        return f"{self.enrolment_id}/{self.subject_id}/HK{self.term}"


class PrimarySubjectAssessment(models.Model):
    """TT27: one pupil's level (T/H/C), test score and comment in one subject at one period."""

    enrolment = models.ForeignKey("schools.Enrolment", on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey("schools.Subject", on_delete=models.PROTECT, related_name="+")
    period = models.CharField(_("period"), max_length=4, choices=PrimaryPeriod.choices)
    level = models.CharField(_("level"), max_length=1, choices=PrimaryLevel.choices, blank=True)
    test_score = models.PositiveSmallIntegerField(_("test score"), null=True, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("primary assessment")
        verbose_name_plural = _("primary assessments")
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "subject", "period"], name="primary_one_row_per_period"
            ),
            models.CheckConstraint(
                condition=Q(test_score__isnull=True) | Q(test_score__gte=1, test_score__lte=10),
                name="primary_test_score_1_to_10",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enrolment_id}/{self.subject_id}/{self.period}"


class QualityAssessment(models.Model):
    """TT27: a pupil's level (T/Đ/C) of one quality or competency at one period, with a comment."""

    enrolment = models.ForeignKey("schools.Enrolment", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(_("quality or competency"), max_length=32)
    period = models.CharField(_("period"), max_length=4, choices=PrimaryPeriod.choices)
    level = models.CharField(_("level"), max_length=1, choices=QualityLevel.choices, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("quality assessment")
        verbose_name_plural = _("quality assessments")
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "code", "period"], name="quality_one_row_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enrolment_id}/{self.code}/{self.period}"


class StudentYear(models.Model):
    """The homeroom teacher's consolidated fields and the computed results of one student's year."""

    enrolment = models.OneToOneField("schools.Enrolment", on_delete=models.PROTECT, related_name="year")
    conduct_term1 = models.CharField(
        _("conduct, term I"), max_length=2, choices=ResultLevel.choices, blank=True
    )
    conduct_term2 = models.CharField(
        _("conduct, term II"), max_length=2, choices=ResultLevel.choices, blank=True
    )
    conduct_year = models.CharField(_("conduct, year"), max_length=2, choices=ResultLevel.choices, blank=True)
    absences = models.PositiveSmallIntegerField(_("absent sessions"), default=0)
    homeroom_comment = models.TextField(_("homeroom teacher's comment"), blank=True)
    award_proposal = models.CharField(_("award proposal"), max_length=200, blank=True)
    # Outputs of the rule set, with the rule set that produced them (recomputable, auditable).
    conduct_after_training = models.CharField(
        _("conduct after summer re-training"), max_length=2, choices=ResultLevel.choices, blank=True
    )
    ruleset = models.CharField(max_length=8, blank=True)
    results = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("student year")
        verbose_name_plural = _("student years")

    def __str__(self) -> str:
        return f"{self.enrolment_id}"


class Retake(models.Model):
    """TT22/TT43: the August re-assessment result of one subject (a score, or Đ/CĐ)."""

    enrolment = models.ForeignKey("schools.Enrolment", on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey("schools.Subject", on_delete=models.PROTECT, related_name="+")
    score = _score_field(_("re-assessment score"))
    level = models.CharField(_("re-assessment level"), max_length=2, choices=CommentLevel.choices, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("re-assessment")
        verbose_name_plural = _("re-assessments")
        constraints = [
            models.UniqueConstraint(fields=["enrolment", "subject"], name="retake_one_per_subject"),
            _score_range("score"),
        ]

    def __str__(self) -> str:
        return f"{self.enrolment_id}/{self.subject_id}"


class AssessmentChange(models.Model):
    """Every change to an assessment cell: who, when, old, new. Append-only (a trigger enforces it)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        on_delete=models.PROTECT,
        related_name="+",
    )
    enrolment = models.ForeignKey("schools.Enrolment", on_delete=models.PROTECT, related_name="+")
    # The cell: which table, which row, which field. Subject is kept for the history view.
    subject = models.ForeignKey("schools.Subject", null=True, on_delete=models.PROTECT, related_name="+")
    table = models.CharField(max_length=40)
    row_id = models.BigIntegerField()
    field = models.CharField(max_length=40)
    # Text, not a bounded column: the audit keeps whatever value the cell held, however long (a
    # homeroom comment longer than the column once made the save fail after the value was valid).
    old = models.TextField(blank=True)
    new = models.TextField(blank=True)
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("assessment change")
        verbose_name_plural = _("assessment changes")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["table", "row_id", "field"], name="change_cell")]

    def __str__(self) -> str:
        return f"{self.table}.{self.field}#{self.row_id}: {self.old!r} -> {self.new!r}"


from .models_book import *  # noqa: E402, F403 -- earlier records attached from other schools
from .models_pdf import *  # noqa: E402, F403 -- the year records' rendered PDFs
from .models_records import *  # noqa: E402, F403 -- the year records' models, kept in their own module
from .models_renewals import *  # noqa: E402, F403 -- issued records renewed by archive timestamps
