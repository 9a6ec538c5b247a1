"""Levels and codes of the assessment circulars, the outcomes the rules decide, the signing steps.

A leaf module: it imports only Django and the pure rules, so models, services, templates and the
apps above transcripts (signing) take their vocabulary from here.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .rules.tt22 import Outcome, Title
from .rules.tt27 import YearResult


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


# What the rules decide (their enums: the one vocabulary of outcomes, titles and primary results,
# stored by value), as the homeroom view and the transcript say it.
OUTCOME_LABELS = {
    Outcome.PROMOTED: _("Promoted"),
    Outcome.SUMMER_TRAINING: _("Summer re-training"),
    Outcome.REASSESSMENT: _("Re-assessment"),
    Outcome.REPEAT: _("Repeats the grade"),
}
TITLE_LABELS = {Title.EXCELLENT: _("Excellent student"), Title.GOOD: _("Good student")}
PRIMARY_RESULT_LABELS = {
    YearResult.EXCELLENT: _("Completed excellently"),
    YearResult.GOOD: _("Completed well"),
    YearResult.DONE: _("Completed"),
    YearResult.NOT_DONE: _("Not completed"),
}


class SignatureStep(models.TextChoices):
    """Who signs a year record, in the order of signing: the one list of the steps (the signature's
    position is its place here, 1-based). signing.models.SigningStep and signing.profile.ROLES
    are this list; the database CHECK on YearRecordSignature is generated from it."""

    HOMEROOM_TEACHER = "homeroom_teacher", _("Homeroom teacher")
    PRINCIPAL = "principal", _("Principal")  # or a vice-principal on the principal's behalf
    SEAL = "seal", _("School seal")


SIGNING_ORDER: tuple[SignatureStep, ...] = tuple(SignatureStep)


def signature_position(step: str) -> int:
    """The position (1, 2, 3) of the signature a step adds."""
    return SIGNING_ORDER.index(SignatureStep(step)) + 1
