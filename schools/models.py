"""A school's own data, in its schema: years, terms, classes, students, enrolments, curriculum."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .choices import EnrolmentStatus, Ruleset, Sex, SubjectKind


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


class Term(models.Model):
    """Term I or II of a school year. A locked term refuses changes until the principal unlocks it."""

    school_year = models.ForeignKey(SchoolYear, on_delete=models.PROTECT, related_name="terms")
    number = models.PositiveSmallIntegerField(_("term"), choices=[(1, _("Term I")), (2, _("Term II"))])
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("term")
        verbose_name_plural = _("terms")
        ordering = ["school_year", "number"]
        constraints = [models.UniqueConstraint(fields=["school_year", "number"], name="term_unique_in_year")]

    def __str__(self) -> str:
        return f"{self.get_number_display()} {self.school_year}"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class Subject(models.Model):
    """A subject or educational activity of the CTGDPT 2018 curriculum (the school's catalogue)."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        verbose_name = _("subject")
        verbose_name_plural = _("subjects")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class CurriculumEntry(models.Model):
    """A subject as taught in one grade in one school year: how it is assessed, with how many scores.

    Versioned by school year: a new year gets its own rows (seeded from the catalogue), so a past
    year's book is always read with the curriculum it was taught under.
    """

    school_year = models.ForeignKey(SchoolYear, on_delete=models.PROTECT, related_name="curriculum")
    grade = models.PositiveSmallIntegerField(_("grade"))
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("assessment"), max_length=10, choices=SubjectKind.choices)
    # TT22/TT43: regular scores per term (2 for ≤35 periods a year, 3 for 35-70, 4 above).
    regular_count = models.PositiveSmallIntegerField(_("regular scores per term"), default=0)
    # TT27: whether the subject has periodic tests (end of term I and of the year).
    has_test = models.BooleanField(_("periodic test"), default=False)
    # TT27 grades 4-5: Tiếng Việt and Toán also have mid-term tests.
    has_mid_test = models.BooleanField(_("mid-term test"), default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("curriculum entry")
        verbose_name_plural = _("curriculum")
        ordering = ["school_year", "grade", "position"]
        constraints = [
            models.UniqueConstraint(fields=["school_year", "grade", "subject"], name="curriculum_unique"),
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=12), name="curriculum_grade_range"),
            models.CheckConstraint(
                condition=Q(kind=SubjectKind.SCORED, regular_count__gte=2, regular_count__lte=4)
                | (~Q(kind=SubjectKind.SCORED) & Q(regular_count=0)),
                name="curriculum_regular_count",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({self.grade})"


class SchoolClass(models.Model):
    """A class in a school year, with its homeroom teacher (GVCN)."""

    school_year = models.ForeignKey(SchoolYear, on_delete=models.PROTECT, related_name="classes")
    name = models.CharField(_("class"), max_length=20)
    grade = models.PositiveSmallIntegerField(_("grade"))
    ruleset = models.CharField(_("assessment rules"), max_length=4, choices=Ruleset.choices)
    homeroom_teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        verbose_name=_("homeroom teacher"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The principal's approval of the year's results; after it the book is read-only, except
    # for the August re-assessment of the students sent to it, closed again by summer_closed_at.
    closed_at = models.DateTimeField(_("year approved at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    summer_closed_at = models.DateTimeField(_("re-assessment closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("class")
        verbose_name_plural = _("classes")
        ordering = ["school_year", "grade", "name"]
        constraints = [
            models.UniqueConstraint(fields=["school_year", "name"], name="class_name_unique_in_year"),
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=12), name="class_grade_range"),
            models.CheckConstraint(
                condition=Q(grade__lte=5, ruleset=Ruleset.TT27)
                | Q(grade__gte=6, ruleset__in=["tt22", "tt43"]),
                name="class_ruleset_matches_grade",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Student(models.Model):
    """A learner, with the identity of their birth certificate (domain.md §4).

    `personal_id` is the 12-digit personal identification number when verified; a student
    without one carries a temporary code issued by the province and is flagged.
    """

    student_code = models.CharField(_("student code"), max_length=20, unique=True)
    personal_id = models.CharField(_("personal ID number"), max_length=12, null=True, blank=True, unique=True)
    temporary_code = models.CharField(_("temporary code"), max_length=20, blank=True)
    full_name = models.CharField(_("full name"), max_length=100)
    sex = models.PositiveSmallIntegerField(_("sex"), choices=Sex.choices, default=Sex.UNKNOWN)
    date_of_birth = models.DateField(_("date of birth"))
    place_of_birth = models.CharField(_("place of birth"), max_length=200, blank=True)
    ethnicity = models.CharField(_("ethnicity"), max_length=50, blank=True)
    nationality = models.CharField(_("nationality"), max_length=50, default="Việt Nam")
    home_town = models.CharField(_("home town"), max_length=200, blank=True)
    current_address = models.CharField(_("current address"), max_length=300, blank=True)
    father_name = models.CharField(_("father's name"), max_length=100, blank=True)
    mother_name = models.CharField(_("mother's name"), max_length=100, blank=True)
    guardian_name = models.CharField(_("guardian's name"), max_length=100, blank=True)
    policy_category = models.CharField(_("policy category"), max_length=100, blank=True)
    disability_exempt = models.BooleanField(_("disability: exempt from some assessments"), default=False)

    class Meta:
        verbose_name = _("student")
        verbose_name_plural = _("students")
        ordering = ["full_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(personal_id__isnull=True) | Q(personal_id__regex=r"^\d{12}$"),
                name="student_personal_id_12_digits",
            ),
            models.CheckConstraint(
                condition=Q(personal_id__isnull=False) | ~Q(temporary_code=""),
                name="student_has_id_or_temporary_code",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def missing_personal_id(self) -> bool:
        return not self.personal_id

    @property
    def given_name(self) -> str:
        """Vietnamese class lists sort by the given name, the last word."""
        return self.full_name.rsplit(" ", 1)[-1]


class Enrolment(models.Model):
    """A student in a class for a year. Transfers keep the history: rows are closed, not deleted."""

    student = models.ForeignKey(Student, on_delete=models.PROTECT, related_name="enrolments")
    school_class = models.ForeignKey(SchoolClass, on_delete=models.PROTECT, related_name="enrolments")
    number = models.PositiveSmallIntegerField(_("number in class"), default=0)
    status = models.CharField(
        _("status"), max_length=20, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )
    enrolled_on = models.DateField(_("enrolled on"))
    left_on = models.DateField(_("left on"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        ordering = ["school_class", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "school_class"],
                condition=Q(status="active"),
                name="enrolment_one_active_per_class",
            ),
            models.CheckConstraint(
                condition=Q(left_on__isnull=True) | Q(left_on__gte=F("enrolled_on")),
                name="enrolment_leaves_after_it_starts",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student} · {self.school_class}"


class TeachingAssignment(models.Model):
    """Who teaches which subject to which class: a subject teacher edits only these."""

    school_class = models.ForeignKey(SchoolClass, on_delete=models.PROTECT, related_name="assignments")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="+")
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        db_constraint=False,  # a trigger checks it (user_checks_not_foreign_keys)
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        verbose_name = _("teaching assignment")
        verbose_name_plural = _("teaching assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["school_class", "subject"], name="assignment_one_teacher_per_subject"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} · {self.school_class}"
