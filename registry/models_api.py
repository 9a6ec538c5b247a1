"""The partner API's tables (public schema): partner clients, their keys, consent issuers, the log.

Imported at the end of registry/models.py (as portal/models.py does with its modules), so that
Django finds them in the registry app. Written only by registry.api.services (admin actions call
them); every registration, change, key issue and revocation is audited (portal.services).

- A key is shown once when issued and never stored: the row keeps a short public prefix (to find
  it) and the SHA-256 of the 256-bit secret. Rotation gives a new key and either lets the old ones
  run out after a grace period (PartnerKey.expires_at) or revokes them at once.
- ApiCall is append-only: a trigger (migration 0004) refuses UPDATE and DELETE, as for the audit
  log and the log of copies. It keeps the personal ID asked for only as the index's keyed hash.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import User

from .api.choices import ConsentAlgorithm, PartnerKind, Purpose, Scope

# A throttle rate as DRF reads it: a number of calls per second, minute, hour or day.
THROTTLE_RATE_PATTERN = r"^[1-9][0-9]{0,5}/(s|sec|second|m|min|minute|h|hour|d|day)$"


class PartnerClient(models.Model):
    """A partner system allowed to call the API: what it may ask (scopes), why (purposes), how often."""

    # The client's public id: what partners quote, and the `aud` of the consent tokens made for it.
    identifier = models.UUIDField(_("client id"), default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=30, choices=PartnerKind.choices)
    scopes = ArrayField(
        models.CharField(max_length=20, choices=Scope.choices),
        verbose_name=_("scopes"),
        default=list,
        blank=True,
    )
    purposes = ArrayField(
        models.CharField(max_length=20, choices=Purpose.choices),
        verbose_name=_("allowed purposes"),
        default=list,
        blank=True,
    )
    throttle_rate = models.CharField(
        _("throttle rate"),
        max_length=20,
        default="60/min",
        help_text=_("Calls allowed per period, like 60/min, 1000/hour or 10/s."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("registered at"), default=timezone.now)
    updated_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("API partner")
        verbose_name_plural = _("API partners")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PartnerKind.values), name="partner_kind_known"),
            models.CheckConstraint(
                condition=Q(scopes__contained_by=Scope.values), name="partner_scopes_known"
            ),
            models.CheckConstraint(
                condition=Q(purposes__contained_by=Purpose.values), name="partner_purposes_known"
            ),
            models.CheckConstraint(
                condition=Q(throttle_rate__regex=THROTTLE_RATE_PATTERN), name="partner_throttle_rate_format"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PartnerKey(models.Model):
    """One API key of a client: its public prefix and the SHA-256 of its secret, never the secret."""

    client = models.ForeignKey(
        PartnerClient, on_delete=models.PROTECT, related_name="keys", verbose_name=_("API partner")
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    digest = models.CharField(_("SHA-256 of the secret"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("issued at"), default=timezone.now)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("issued by")
    )
    # Set when the key is rotated with a grace period: it works until then, and never after.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("revoked by")
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="partner_key_digest_hex"
            ),
            models.CheckConstraint(
                condition=Q(prefix__regex=r"^[0-9a-z]{8,16}$"), name="partner_key_prefix_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}…"

    def usable_at(self, moment) -> bool:
        """Whether the key opens the API at `moment`: not revoked, not past its grace period."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


class ConsentIssuer(models.Model):
    """A party whose signed consent tokens the portal trusts (e.g. the citizen identity app)."""

    name = models.CharField(_("name"), max_length=200)
    # The `iss` claim of its tokens.
    issuer = models.CharField(_("issuer (iss)"), max_length=200, unique=True)
    algorithm = models.CharField(_("algorithm"), max_length=10, choices=ConsentAlgorithm.choices)
    public_key = models.TextField(_("public key (PEM)"))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("registered at"), default=timezone.now)
    updated_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("consent issuer")
        verbose_name_plural = _("consent issuers")
        ordering = ["name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(algorithm__in=ConsentAlgorithm.values), name="consent_issuer_algorithm_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.issuer})"


class ApiCall(models.Model):
    """One call to the API, whatever its outcome: who, why, what, the answer, how long. Append-only."""

    at = models.DateTimeField(_("when"), default=timezone.now)
    client = models.ForeignKey(
        PartnerClient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("API partner"),
    )
    key_prefix = models.CharField(_("key prefix"), max_length=16, blank=True)
    purpose = models.CharField(_("purpose"), max_length=32, blank=True)
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("endpoint"), max_length=200)
    status_code = models.PositiveSmallIntegerField(_("status"))
    error_code = models.CharField(_("error"), max_length=40, blank=True)
    # The index's keyed hash of the personal ID asked for (portal.selectors.personal_id_digest).
    personal_id_digest = models.CharField(_("personal ID (keyed hash)"), max_length=64, blank=True)
    consent_jti = models.CharField(_("consent token id"), max_length=100, blank=True)
    record_id = models.CharField(_("record id"), max_length=64, blank=True)
    version = models.PositiveIntegerField(_("version"), null=True, blank=True)
    # A copy handed out (XML or PDF): the SHA-256 of its bytes, as portal.CopyLog keeps for people.
    sha256 = models.CharField(_("SHA-256 of the copy"), max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    # The hash chain (portal 0021, docs/security.md): set by the database on insert, never here.
    chain_seq = models.BigIntegerField(editable=False, blank=True)
    chain_hash = models.BinaryField(editable=False, blank=True)

    class Meta:
        verbose_name = _("API call")
        verbose_name_plural = _("API calls")
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["client", "at"], name="api_call_client_at"),
            models.Index(fields=["at"], name="api_call_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(personal_id_digest="") | Q(personal_id_digest__regex=r"^[0-9a-f]{64}$"),
                name="api_call_personal_id_hashed",
            ),
            models.CheckConstraint(
                condition=Q(sha256="") | Q(sha256__regex=r"^[0-9a-f]{64}$"), name="api_call_sha256_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.method} {self.path} {self.status_code}"
