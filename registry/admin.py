"""The partner API in the admin site: partner clients, their keys, consent issuers, the call log.

Only the department administrator sees or changes any of it (portal.permissions.
can_administer_province): a key opens students' records. Every write goes through
registry.api.services (audited); a key is shown once, on the page the issuing action answers
with, and never stored nor sent anywhere else (not in a message cookie, not in the log).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.sites import all_sites
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.permissions import can_administer_province

from .api.choices import Purpose, Scope
from .api.services import (
    CLIENT_FIELDS,
    ISSUER_FIELDS,
    consent_issuer_register,
    consent_issuer_update,
    consent_public_key_check,
    key_grace,
    partner_client_register,
    partner_client_update,
    partner_key_issue,
    partner_key_revoke,
)
from .models_api import ApiCall, ConsentIssuer, PartnerClient, PartnerKey


def _portal_site() -> admin.AdminSite:
    """The portal's admin site (portal.admin.admin_site), found among the sites Django knows.

    registry may not import portal.admin (only portal's public face, design.md §2); the admin
    modules are loaded in INSTALLED_APPS order, portal's first, so the site exists by now. It is
    the one named "admin" that is not Django's plain default site.
    """
    for site in all_sites:
        if site.name == "admin" and type(site) is not admin.AdminSite:
            return site
    raise RuntimeError("The portal's admin site is not loaded")  # pragma: no cover


admin_site = _portal_site()


class DepartmentAdminOnly(admin.ModelAdmin):
    """Seen and changed by the department administrator only; nothing is ever deleted here."""

    def has_module_permission(self, request):
        return can_administer_province(request.user)

    def has_view_permission(self, request, obj=None):
        return can_administer_province(request.user)

    def has_add_permission(self, request):
        return can_administer_province(request.user)

    def has_change_permission(self, request, obj=None):
        return can_administer_province(request.user)

    def has_delete_permission(self, request, obj=None):
        return False

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class PartnerClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("scopes"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    purposes = forms.MultipleChoiceField(
        label=gettext_lazy("allowed purposes"),
        choices=Purpose.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = PartnerClient
        fields = CLIENT_FIELDS


@admin.register(PartnerClient, site=admin_site)
class PartnerClientAdmin(DepartmentAdminOnly):
    form = PartnerClientForm
    list_display = (
        "name",
        "kind",
        "identifier",
        "scopes",
        "purposes",
        "throttle_rate",
        "active",
        "keys_in_force",
    )
    list_filter = ("kind", "active")
    search_fields = ("name",)
    readonly_fields = ("identifier", "created_at", "updated_at")
    actions = ["issue_key_with_grace", "issue_key_revoking_others"]

    @admin.display(description=gettext_lazy("keys in force"))
    def keys_in_force(self, obj: PartnerClient) -> int:
        now = timezone.now()
        return sum(1 for key in obj.keys.all() if key.usable_at(now))

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("keys")

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in CLIENT_FIELDS}
        try:
            if change:
                saved = partner_client_update(actor=request.user, client=obj, **fields)
            else:
                saved = partner_client_register(actor=request.user, **fields)
        except ValidationError as exc:
            raise PermissionDenied("; ".join(exc.messages)) from exc
        obj.pk = saved.pk
        obj._state.adding = False

    def _issue(self, request, queryset, *, revoke_others: bool):
        issued = [
            partner_key_issue(actor=request.user, client=client, revoke_others=revoke_others)
            for client in queryset
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("API keys issued"),
            "issued": issued,
            "revoke_others": revoke_others,
            "grace_hours": int(key_grace().total_seconds() // 3600),
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "registry/api_keys_issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(
        description=gettext_lazy("Issue a new API key (the old keys keep working for the grace period)")
    )
    def issue_key_with_grace(self, request, queryset):
        return self._issue(request, queryset, revoke_others=False)

    @admin.action(description=gettext_lazy("Issue a new API key and revoke the old keys at once"))
    def issue_key_revoking_others(self, request, queryset):
        return self._issue(request, queryset, revoke_others=True)


class KeyRevokedFilter(admin.SimpleListFilter):
    """Revoked or not, in those words: Django's filter on revoked_at said "Empty", "Not empty"."""

    title = gettext_lazy("revoked")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", _("not revoked")), ("yes", _("revoked"))]

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(PartnerKey, site=admin_site)
class PartnerKeyAdmin(DepartmentAdminOnly):
    list_display = ("prefix", "client", "created_at", "created_by", "expires_at", "revoked_at", "state")
    list_filter = ("client", KeyRevokedFilter)
    list_select_related = ("client", "created_by")
    readonly_fields = (
        "client",
        "prefix",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    exclude = ("digest",)
    actions = ["revoke_selected"]

    @admin.display(description=gettext_lazy("state"))
    def state(self, obj: PartnerKey) -> str:
        if obj.revoked_at is not None:
            return _("revoked")
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return _("expired")
        if obj.expires_at is not None:
            return _("in force until its grace period ends")
        return _("in force")

    def has_add_permission(self, request):
        return False  # issued from the partner's page (an action), shown once

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=gettext_lazy("Revoke the selected API keys now"))
    def revoke_selected(self, request, queryset):
        revoked = 0
        for key in queryset.filter(revoked_at__isnull=True):
            partner_key_revoke(actor=request.user, key=key)
            revoked += 1
        self.message_user(request, _("%(count)d API key(s) revoked.") % {"count": revoked}, messages.SUCCESS)


class ConsentIssuerForm(forms.ModelForm):
    class Meta:
        model = ConsentIssuer
        fields = ISSUER_FIELDS
        widgets = {"public_key": forms.Textarea(attrs={"rows": 6, "cols": 70})}

    def clean(self):
        data = super().clean()
        if data.get("algorithm") and data.get("public_key"):
            consent_public_key_check(algorithm=data["algorithm"], public_key=data["public_key"])
        return data


@admin.register(ConsentIssuer, site=admin_site)
class ConsentIssuerAdmin(DepartmentAdminOnly):
    form = ConsentIssuerForm
    list_display = ("name", "issuer", "algorithm", "active", "updated_at")
    list_filter = ("active", "algorithm")
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in ISSUER_FIELDS}
        if change:
            saved = consent_issuer_update(actor=request.user, issuer=obj, **fields)
        else:
            saved = consent_issuer_register(actor=request.user, **fields)
        obj.pk = saved.pk
        obj._state.adding = False


@admin.register(ApiCall, site=admin_site)
class ApiCallAdmin(DepartmentAdminOnly):
    list_display = (
        "at",
        "client",
        "key_prefix",
        "purpose",
        "method",
        "path",
        "status_code",
        "error_code",
        "duration_ms",
    )
    list_filter = ("status_code", "client", "purpose")
    search_fields = ("key_prefix", "consent_jti", "record_id", "path")
    list_select_related = ("client",)
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
