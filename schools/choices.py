"""Enumerations of a school's own data."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Sex(models.IntegerChoices):
    """QCVN 109 codes."""

    UNKNOWN = 0, _("Unknown")
    MALE = 1, _("Male")
    FEMALE = 2, _("Female")


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", _("Studying")
    TRANSFERRED_OUT = "transferred_out", _("Transferred out")
    MOVED = "moved", _("Moved to another class")
    LEFT = "left", _("Left school")
    COMPLETED = "completed", _("Completed the year")


class SubjectKind(models.TextChoices):
    """How a subject is assessed, which depends on the circular that applies to the class."""

    PRIMARY = "primary", _("Level T/H/C (TT27)")
    SCORED = "scored", _("Scores 0-10 (TT22/TT43)")
    COMMENT = "comment", _("Đạt / Chưa đạt (TT22/TT43)")


class Ruleset(models.TextChoices):
    TT27 = "tt27", _("Circular 27/2020 (primary)")
    TT22 = "tt22", _("Circular 22/2021 (secondary)")
    TT43 = "tt43", _("Circular 43/2021 (continuing education)")


# The content type of the workbooks the portal reads (the import) and writes (the exports).
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
