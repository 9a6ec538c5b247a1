"""Levels and codes of the assessment circulars."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PrimaryLevel(models.TextChoices):
    """TT27 subject levels."""

    T = "T", _("Completed well")
    H = "H", _("Completed")
    C = "C", _("Not completed")


class QualityLevel(models.TextChoices):
    """TT27 levels of qualities and competencies."""

    T = "T", _("Good")
    D = "Đ", _("Satisfactory")
    C = "C", _("Needs effort")


class CommentLevel(models.TextChoices):
    """TT22/TT43 comment-only subjects."""

    D = "Đ", _("Pass")
    CD = "CĐ", _("Not passed")


class ResultLevel(models.TextChoices):
    """TT22/TT43 learning and conduct results."""

    T = "T", _("Good")
    K = "K", _("Fair")
    D = "Đ", _("Pass")
    CD = "CĐ", _("Not passed")


class PrimaryPeriod(models.TextChoices):
    MID1 = "mid1", _("Mid-term I")
    END1 = "end1", _("End of term I")
    MID2 = "mid2", _("Mid-term II")
    END2 = "end2", _("End of year")


# TT27 qualities (phẩm chất) and competencies (năng lực), in the order of the form.
QUALITIES = [
    ("yeu_nuoc", _("Patriotism")),
    ("nhan_ai", _("Kindness")),
    ("cham_chi", _("Diligence")),
    ("trung_thuc", _("Honesty")),
    ("trach_nhiem", _("Responsibility")),
]
GENERAL_COMPETENCIES = [
    ("tu_chu_tu_hoc", _("Autonomy and self-learning")),
    ("giao_tiep_hop_tac", _("Communication and cooperation")),
    ("gqvd_sang_tao", _("Problem solving and creativity")),
]
SPECIFIC_COMPETENCIES = [
    ("ngon_ngu", _("Language")),
    ("tinh_toan", _("Numeracy")),
    ("khoa_hoc", _("Science")),
    ("cong_nghe", _("Technology")),
    ("tin_hoc", _("Informatics")),
    ("tham_mi", _("Aesthetics")),
    ("the_chat", _("Physical")),
]


# What the rules decide, as the homeroom view and the transcript say it.
OUTCOME_LABELS = {
    "promoted": _("Promoted"),
    "summer_training": _("Summer re-training"),
    "reassessment": _("Re-assessment"),
    "repeat": _("Repeats the grade"),
}
TITLE_LABELS = {"xuat_sac": _("Excellent student"), "gioi": _("Good student")}
PRIMARY_RESULT_LABELS = {
    "HTXS": _("Completed excellently"),
    "HTT": _("Completed well"),
    "HT": _("Completed"),
    "CHT": _("Not completed"),
}
