"""The province in the public schema: department, divisions, schools (tenants), users, roles, audit."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django_tenants.models import TenantMixin

from .choices import ROLE_SCOPE, AuditAction, DivisionKind, Role, SchoolLevel, ScopeKind

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$"
code_validator = RegexValidator(
    CODE_PATTERN, _("Use 1-31 letters, digits, '-' or '_', starting with a letter or digit.")
)


class Department(models.Model):
    """The provincial Department of Education and Training (Sở GD&ĐT): one per deployment."""

    code = models.CharField(_("code"), max_length=16, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    # Place of issue printed on transcripts ("Lào Cai, ngày ... tháng ... năm ...").
    place_name = models.CharField(_("place of issue"), max_length=100, blank=True)
    # Always True: the unique constraint below is what makes the department a singleton.
    singleton = models.BooleanField(default=True, editable=False)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        constraints = [
            models.UniqueConstraint(fields=["singleton"], name="department_one_per_deployment"),
            models.CheckConstraint(condition=Q(singleton=True), name="department_singleton_true"),
        ]

    def __str__(self) -> str:
        return self.name


class Division(models.Model):  # type: ignore[django-manager-missing]  # School is a TenantMixin, see School
    """A unit that supervises a group of schools: a district office, a commune/ward, or a cluster."""

    code = models.CharField(_("code"), max_length=31, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=DivisionKind.choices)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("division")
        verbose_name_plural = _("divisions")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class School(TenantMixin):
    """A school, and its PostgreSQL schema. Created only through portal.provisioning.

    django-tenants has no type information, so mypy's Django plugin does not see School as a
    model: its fields are annotated by hand, and the plugin's complaint that it cannot resolve
    the reverse manager Division.schools is ignored (it types it right all the same).
    """

    # Schemas are cloned from the template by school_provision, never created on save().
    auto_create_schema = False
    auto_drop_schema = False

    code: models.CharField[str, str] = models.CharField(
        _("school code"), max_length=31, validators=[code_validator]
    )
    name: models.CharField[str, str] = models.CharField(_("name"), max_length=200)
    levels: ArrayField[list[str], list[str]] = ArrayField(
        models.CharField(max_length=20, choices=SchoolLevel.choices),
        verbose_name=_("levels taught"),
    )
    division: models.ForeignKey[Division | None, Division | None] = models.ForeignKey(
        Division,
        verbose_name=_("division"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="schools",
        help_text=_("Empty when the school reports to the department directly."),
    )
    address: models.CharField[str, str] = models.CharField(_("address"), max_length=300, blank=True)
    active: models.BooleanField[bool, bool] = models.BooleanField(_("active"), default=True)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        _("created"), auto_now_add=True
    )
    # Digest of the tenant migrations applied to this schema (portal.migrations_state); a
    # migrate_schemas run skips the schools already at the current digest.
    migration_state: models.CharField[str, str] = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("school")
        verbose_name_plural = _("schools")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("code"), name="school_code_unique_ci"),
            models.CheckConstraint(condition=~Q(levels=[]), name="school_has_a_level"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def url_path(self) -> str:
        return f"/{settings.SCHOOL_URL_PREFIX}/{self.code}/"

    @property
    def level_labels(self) -> list[str]:
        return [str(SchoolLevel(level).label) for level in self.levels]

    @staticmethod
    def schema_name_for(code: str) -> str:
        return "sch_" + code.lower().replace("-", "_")


class User(AbstractUser):
    """A person, province-wide. What they may do is in their RoleAssignments."""

    full_name = models.CharField(_("full name"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), condition=~Q(email=""), name="user_email_unique_ci"),
        ]

    def get_full_name(self) -> str:
        return self.full_name or super().get_full_name() or self.username

    def __str__(self) -> str:
        return self.get_full_name()


class RoleAssignmentQuerySet(models.QuerySet["RoleAssignment"]):
    def current(self) -> RoleAssignmentQuerySet:
        """Assignments in force now: not revoked and not past their end date."""
        from django.utils import timezone

        today = timezone.localdate()
        return self.filter(revoked_at__isnull=True).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=today)
        )


class RoleAssignment(models.Model):
    """One role, held by one user, over one scope: the department, a division or a school."""

    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="role_assignments"
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    division = models.ForeignKey(
        Division, verbose_name=_("division"), null=True, blank=True, on_delete=models.PROTECT
    )
    school = models.ForeignKey(
        School, verbose_name=_("school"), null=True, blank=True, on_delete=models.PROTECT
    )
    is_manager = models.BooleanField(
        _("manager"),
        default=False,
        help_text=_("A division officer who manages the division may appoint school leaders."),
    )
    data_access = models.BooleanField(
        _("may open school data"),
        default=False,
        help_text=_("Department and division staff open school pages only with this grant."),
    )
    granted_by = models.ForeignKey(
        User,
        verbose_name=_("granted by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User,
        verbose_name=_("revoked by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    objects = RoleAssignmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("role assignment")
        verbose_name_plural = _("role assignments")
        ordering = ["-granted_at"]
        constraints = [
            models.CheckConstraint(
                name="role_assignment_scope_matches_role",
                condition=(
                    Q(
                        role__in=[r for r, s in ROLE_SCOPE.items() if s == ScopeKind.DEPARTMENT],
                        division__isnull=True,
                        school__isnull=True,
                    )
                    | Q(
                        role__in=[r for r, s in ROLE_SCOPE.items() if s == ScopeKind.DIVISION],
                        division__isnull=False,
                        school__isnull=True,
                    )
                    | Q(
                        role__in=[r for r, s in ROLE_SCOPE.items() if s == ScopeKind.SCHOOL],
                        division__isnull=True,
                        school__isnull=False,
                    )
                ),
            ),
            models.CheckConstraint(
                name="role_assignment_manager_only_for_division",
                condition=Q(is_manager=False) | Q(role=Role.DIVISION_OFFICER),
            ),
            models.CheckConstraint(
                name="role_assignment_revocation_complete",
                condition=Q(revoked_at__isnull=True) | Q(revoked_by__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["user", "role", "division", "school"],
                condition=Q(revoked_at__isnull=True),
                nulls_distinct=False,
                name="role_assignment_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.scope_label}"

    @property
    def scope_kind(self) -> str:
        return ROLE_SCOPE[self.role]

    @property
    def scope_label(self) -> str:
        if self.school_id:
            return str(self.school)
        if self.division_id:
            return str(self.division)
        return str(_("Department"))


class AuditEntry(models.Model):
    """Who changed what in the province, when: grants, revocations, schools, users. Append-only."""

    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User, verbose_name=_("who"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=50)
    object_id = models.CharField(_("object id"), max_length=64)
    summary = models.CharField(_("summary"), max_length=300)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    # The scope the entry belongs to, so the admin can show each operator only their own.
    division = models.ForeignKey(Division, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    school = models.ForeignKey(School, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return self.summary


from .models_copies import CopyLog  # noqa: E402, F401 -- the log of copies handed out (public schema)
from .models_guides import GuideDismissal  # noqa: E402, F401 -- the guides each user has dismissed (public schema)
from .models_jobs import PdfDue  # noqa: E402, F401 -- the PDFs due, the queue of PDF work as a fact (public schema)
from .models_progress import ProgressWeek, SchoolProgress  # noqa: E402, F401 -- progress per school (public schema)
from .models_verification import IssuedRecord, VerificationLog  # noqa: E402, F401 -- public-schema models in their own module
