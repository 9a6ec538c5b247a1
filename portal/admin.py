"""The operators' admin site: each staff user sees and changes only what lies in their scope.

Access is decided by portal.permissions (roles), not by Django's is_staff flag or model
permissions: a division officer sees its division's schools, a school administrator its school.
Grants and revocations go through the services, so the delegation rule and the audit log apply.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import quote

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import lockout, selectors
from .accounts import ACCOUNT_FIELDS, user_two_factor_reset, user_update
from .choices import Role, SchoolLevel
from .formats import moment_vi
from .models import AuditEntry, Department, Division, RoleAssignment, School, User
from .permissions import (
    Decision,
    access_for,
    can_administer_province,
    can_grant,
    can_manage_account,
    can_revoke,
    can_unlock_logins,
    can_use_admin,
    grantable_roles,
)
from .provisioning import SchoolSpec, school_provision
from .services import (
    SCHOOL_EDITABLE_FIELDS,
    role_assignment_grant,
    role_assignment_revoke,
    school_update,
    user_changes_record,
    user_create,
)


class PortalAdminSite(admin.AdminSite):
    site_header = gettext_lazy("Digital school transcripts: administration")
    site_title = gettext_lazy("Administration")
    index_title = gettext_lazy("Schools, users and roles")

    def has_permission(self, request: HttpRequest) -> bool:
        return can_use_admin(request.user)

    def login(self, request, extra_context=None):
        # One login for the whole portal (allauth, with its second factor); no admin login form.
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        if request.user.is_authenticated:
            raise PermissionDenied
        # Encoded: a `next` carrying its own query (?q=a&b=1) stays one parameter (allauth checks it).
        return redirect(f"{reverse('account_login')}?{REDIRECT_FIELD_NAME}={quote(target, safe='/')}")


admin_site = PortalAdminSite(name="admin")


class ScopedAdmin(admin.ModelAdmin):
    """Base: module visibility by role, never by Django model permissions; no deletes."""

    def has_module_permission(self, request):
        return can_use_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return can_use_admin(request.user)

    def has_add_permission(self, request):
        return can_administer_province(request.user)

    def has_change_permission(self, request, obj=None):
        return can_administer_province(request.user)

    def has_delete_permission(self, request, obj=None):
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Out of scope answers 404, as everywhere else (Django's admin would redirect with a message).
        raise Http404

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Department, site=admin_site)
class DepartmentAdmin(ScopedAdmin):
    list_display = ("code", "name", "place_name")

    def has_add_permission(self, request):
        return can_administer_province(request.user) and not Department.objects.exists()


@admin.register(Division, site=admin_site)
class DivisionAdmin(ScopedAdmin):
    list_display = ("code", "name", "kind", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "name")

    def get_queryset(self, request):
        return selectors.divisions_for(request.user)


class SchoolForm(forms.ModelForm):
    levels = forms.TypedMultipleChoiceField(
        label=gettext_lazy("levels taught"),
        choices=SchoolLevel.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = School
        fields = ("code", "name", "levels", "division", "address", "active")


@admin.register(School, site=admin_site)
class SchoolAdmin(ScopedAdmin):
    form = SchoolForm
    list_display = ("code", "name", "division", "levels_label", "active")
    list_filter = ("active", "division")
    search_fields = ("code", "name")
    list_select_related = ("division",)

    @admin.display(description=gettext_lazy("levels taught"), ordering="levels")
    def levels_label(self, obj: School) -> str:
        # The labels, not the codes stored in the array ("lower_secondary"): Django shows an
        # ArrayField of choices by its raw values.
        return ", ".join(str(SchoolLevel(level).label) for level in obj.levels)

    def get_queryset(self, request):
        return selectors.schools_for(request.user)

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj) and "levels" in fields:
            fields[fields.index("levels")] = "levels_label"  # read only: the labels (see above)
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("code",) if self.has_change_permission(request, obj) else ("code", "levels_label")

    def save_model(self, request, obj, form, change):
        # Through the services: a new school gets its schema cloned; every change is audited.
        if change:
            fields = {name: form.cleaned_data[name] for name in SCHOOL_EDITABLE_FIELDS}
            saved = school_update(actor=request.user, school=obj, **fields)
        else:
            spec = SchoolSpec(
                code=obj.code,
                name=obj.name,
                levels=tuple(obj.levels),
                address=obj.address,
            )
            saved, _outcome = school_provision(actor=request.user, spec=spec, division=obj.division)
        obj.pk = saved.pk
        obj._state.adding = False


class RoleAssignmentInline(admin.TabularInline):
    model = RoleAssignment
    fk_name = "user"
    extra = 0
    can_delete = False
    fields = ("role", "division", "school", "is_manager", "data_access", "valid_until", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True

    def get_queryset(self, request):
        return selectors.role_assignments_for(request.user).filter(revoked_at__isnull=True)


class PortalUserCreationForm(forms.ModelForm):
    password = forms.CharField(
        label=gettext_lazy("Initial password"),
        widget=forms.PasswordInput,
        required=False,
        help_text=gettext_lazy("Leave empty to let the user set one through password reset."),
    )

    class Meta:
        model = User
        fields = ("username", "full_name", "email")


@admin.register(User, site=admin_site)
class PortalUserAdmin(UserAdmin, ScopedAdmin):
    """Accounts: visible in the actor's scope (404 outside it); changed only by whoever could grant
    every role the account holds (portal.permissions.can_manage_account), read-only otherwise."""

    add_form = PortalUserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "full_name", "email", "is_active", "last_login", "login_lock")
    list_filter = ("is_active",)
    search_fields = ("username", "full_name", "email")
    ordering = ("username",)
    inlines = [RoleAssignmentInline]
    actions = ["unlock_logins"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "username",
                    "password",
                    "full_name",
                    "email",
                    "is_active",
                    "last_login",
                    "two_factor",
                    "login_lock",
                )
            },
        ),
    )
    add_fieldsets = ((None, {"fields": ("username", "full_name", "email", "password")}),)
    readonly_fields = ("last_login", "two_factor", "login_lock")

    def get_queryset(self, request):
        return selectors.users_for(request.user)

    def has_add_permission(self, request):
        return bool(grantable_roles(request.user))

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return bool(grantable_roles(request.user))
        return can_manage_account(request.user, obj).allowed

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not can_unlock_logins(request.user):
            actions.pop("unlock_logins", None)
        return actions

    @admin.display(description=gettext_lazy("second factor"))
    def two_factor(self, obj):
        from allauth.mfa.models import Authenticator

        has_totp = Authenticator.objects.filter(user=obj, type=Authenticator.Type.TOTP).exists()
        state = _("set up (TOTP)") if has_totp else _("not set up")
        if not has_totp:
            return state
        url = reverse("admin:portal_user_two_factor_reset", args=[obj.pk])
        return format_html('{} · <a href="{}">{}</a>', state, url, _("Remove (lost phone)"))

    @admin.display(description=gettext_lazy("login lock-out"))
    def login_lock(self, obj):
        until = lockout.login_locked_until(obj)
        if until is None:
            return "–"
        return _("locked until %(time)s") % {"time": moment_vi(until)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        target = self.get_object(request, object_id)
        if target is not None:
            decision = can_manage_account(request.user, target)
            if not decision and request.method == "POST":
                return self._refused(request, target, decision)
            if not decision:
                # Shown read-only (has_change_permission), with the reason.
                self.message_user(request, decision.reason, messages.WARNING)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            created = user_create(
                actor=request.user,
                username=form.cleaned_data["username"],
                full_name=form.cleaned_data["full_name"],
                email=form.cleaned_data.get("email", ""),
                password=form.cleaned_data.get("password") or None,
            )
            obj.pk = created.pk
            obj._state.adding = False
            return
        # Through the service: it asks can_manage_account again and audits old and new values.
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in ACCOUNT_FIELDS}
        user_update(actor=request.user, user=User.objects.get(pk=obj.pk), **fields)

    def response_add(self, request, obj, post_url_continue=None):
        # A new account is useless until it holds a role: go straight to granting one.
        if "_addanother" in request.POST or "_continue" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        return redirect(f"{reverse('admin:portal_roleassignment_add')}?user={obj.username}")

    def get_urls(self):
        return [
            path(
                "<id>/two-factor/",
                self.admin_site.admin_view(self.user_two_factor_reset),
                name="portal_user_two_factor_reset",
            ),
            *super().get_urls(),
        ]

    def _managed_or_refusal(self, request, id) -> tuple[User, HttpResponse | None]:
        """The account (404 outside the actor's scope) and, if the actor may not manage it, the
        403 page that says why."""
        target = self.get_object(request, id)
        if target is None:
            raise Http404
        decision = can_manage_account(request.user, target)
        return target, None if decision else self._refused(request, target, decision)

    def _refused(self, request, target: User, decision: Decision) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Not allowed"),
            "target": target,
            "reason": decision.reason,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/portal/user/account_refused.html", context, status=403)

    def user_change_password(self, request, id, form_url=""):
        target, refusal = self._managed_or_refusal(request, id)
        if refusal is not None:
            return refusal
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user_changes_record(actor=request.user, user=target, changed={"password": ("***", "***")})
        return response

    def user_two_factor_reset(self, request, id):
        """Remove an account's second factor (a lost phone), after a confirmation."""
        target, refusal = self._managed_or_refusal(request, id)
        if refusal is not None:
            return refusal
        if request.method == "POST":
            removed = user_two_factor_reset(actor=request.user, user=target)
            if removed:
                self.message_user(
                    request,
                    _("The second factor of %(user)s was removed; they set up a new one at their next login.")
                    % {"user": target.username},
                    messages.SUCCESS,
                )
            return redirect(reverse("admin:portal_user_change", args=[target.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Remove the second factor of %(user)s") % {"user": target.username},
            "target": target,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/portal/user/two_factor_reset.html", context)

    @admin.action(description=gettext_lazy("Unlock the selected accounts (locked after wrong passwords)"))
    def unlock_logins(self, request, queryset):
        if not can_unlock_logins(request.user):
            raise PermissionDenied
        unlocked = [user.username for user in queryset if lockout.login_unlock(actor=request.user, user=user)]
        if unlocked:
            self.message_user(
                request,
                _("Unlocked: %(users)s.") % {"users": ", ".join(unlocked)},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, _("None of the selected accounts was locked."), messages.INFO)


class AccountField(forms.CharField):
    """An account named by its exact username or email.

    Not a drop-down: a school administrator must be able to grant a role to a visiting teacher
    registered by another school, without being shown the province's list of people.
    """

    def clean(self, value):
        value = super().clean(value).strip()
        user = selectors.user_by_login(value)
        if user is None:
            raise ValidationError(
                _("No active account has the username or email '%(login)s'.") % {"login": value}
            )
        return user


class RoleAssignmentForm(forms.ModelForm):
    """Grant form: the choices offered are only those the acting user may grant."""

    user = AccountField(label=gettext_lazy("Account (username or email)"), max_length=254)

    class Meta:
        model = RoleAssignment
        fields = ("user", "role", "division", "school", "is_manager", "data_access", "valid_until")

    def __init__(self, *args, actor: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        # The form fields Django makes for the model's choices and foreign keys. A granted
        # assignment's page is read-only (never edited: RoleAssignmentAdmin.has_change_permission),
        # and its form has none of them: opening it was a server error.
        if "role" in self.fields:
            role_field = cast(forms.ChoiceField, self.fields["role"])
            role_field.choices = [(r, Role(r).label) for r in grantable_roles(actor)]
        if "school" in self.fields:
            school_field = cast("forms.ModelChoiceField[School]", self.fields["school"])
            school_field.queryset = selectors.schools_for(actor).filter(active=True)
        if "division" in self.fields:
            division_field = cast("forms.ModelChoiceField[Division]", self.fields["division"])
            division_field.queryset = selectors.divisions_for(actor)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        decision = can_grant(
            self.actor,
            grantee=data.get("user"),
            role=data.get("role"),
            division=data.get("division"),
            school=data.get("school"),
            is_manager=data.get("is_manager", False),
            data_access=data.get("data_access", False),
        )
        if not decision:
            raise ValidationError(decision.reason)
        return data

    def validate_unique(self):
        # The service reports a duplicate active role in words; the model check would be terse.
        return


class RevokedFilter(admin.SimpleListFilter):
    """In force or revoked, in those words: Django's filter on revoked_at said "Empty", "Not empty"."""

    title = gettext_lazy("status")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", _("in force")), ("yes", _("revoked"))]

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(RoleAssignment, site=admin_site)
class RoleAssignmentAdmin(ScopedAdmin):
    form = RoleAssignmentForm
    list_display = (
        "user",
        "role",
        "scope",
        "is_manager",
        "data_access",
        "granted_by",
        "granted_at",
        "status",
    )
    list_filter = ("role", RevokedFilter)
    search_fields = ("user__username", "user__full_name", "school__code", "school__name", "division__name")
    autocomplete_fields = ()
    actions = ["revoke_selected"]
    list_select_related = ("user", "division", "school", "granted_by")

    @admin.display(description=gettext_lazy("scope"))
    def scope(self, obj):
        return obj.scope_label

    @admin.display(description=gettext_lazy("status"))
    def status(self, obj):
        return _("revoked") if obj.revoked_at else _("in force")

    def get_queryset(self, request):
        return selectors.role_assignments_for(request.user)

    def has_add_permission(self, request):
        return bool(grantable_roles(request.user))

    def has_change_permission(self, request, obj=None):
        # Assignments are never edited: they are granted, and revoked.
        return False

    def get_fields(self, request, obj=None):
        # Division roles and the two flags are the department administrator's to grant; nobody
        # else is shown them.
        if access_for(request.user).is_department_admin:
            return ("user", "role", "division", "school", "is_manager", "data_access", "valid_until")
        return ("user", "role", "school", "valid_until")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        actor = request.user

        class BoundForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, actor=actor, **kw)

        return BoundForm

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            saved = role_assignment_grant(
                actor=request.user,
                user=data["user"],
                role=data["role"],
                division=data.get("division"),
                school=data.get("school"),
                is_manager=data.get("is_manager", False),
                data_access=data.get("data_access", False),
                valid_until=data.get("valid_until"),
            )
        except (PermissionDenied, ValidationError) as exc:
            raise PermissionDenied(str(exc)) from exc
        obj.pk = saved.pk
        obj._state.adding = False

    @admin.action(description=gettext_lazy("Revoke the selected roles"))
    def revoke_selected(self, request, queryset):
        revoked, refused = 0, []
        for assignment in queryset.filter(revoked_at__isnull=True):
            decision = can_revoke(request.user, assignment)
            if not decision:
                refused.append(f"{assignment}: {decision.reason}")
                continue
            role_assignment_revoke(actor=request.user, assignment=assignment)
            revoked += 1
        if revoked:
            self.message_user(request, _("%(count)d role(s) revoked.") % {"count": revoked}, messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)


@admin.register(AuditEntry, site=admin_site)
class AuditEntryAdmin(ScopedAdmin):
    list_display = ("at", "actor", "action", "summary", "school_label", "division_label")
    list_filter = ("action",)
    search_fields = ("summary", "actor__username", "object_id")
    list_select_related = ("actor", "school", "division")
    # The entry's school and division by methods: the model's two fields carry no verbose name
    # (the admin said "School", "Division"), and naming them there is a migration of the audit log.
    fields = readonly_fields = (
        "at",
        "actor",
        "action",
        "object_type_label",
        "object_id",
        "summary",
        "changes",
        "school_label",
        "division_label",
    )

    @admin.display(description=gettext_lazy("object type"))
    def object_type_label(self, obj: AuditEntry) -> str:
        # Stored as a model's label ("portal.school"): shown by the model's name ("trường học").
        try:
            return str(apps.get_model(obj.object_type)._meta.verbose_name)
        except (LookupError, ValueError):
            return obj.object_type

    @admin.display(description=gettext_lazy("school"), ordering="school__name")
    def school_label(self, obj: AuditEntry) -> str:
        return str(obj.school) if obj.school_id else "-"

    @admin.display(description=gettext_lazy("division"), ordering="division__name")
    def division_label(self, obj: AuditEntry) -> str:
        return str(obj.division) if obj.division_id else "-"

    def get_queryset(self, request):
        return selectors.audit_entries_for(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
