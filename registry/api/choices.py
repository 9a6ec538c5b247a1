"""The partner API's vocabularies: client kinds, scopes, purposes, consent token algorithms."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PartnerKind(models.TextChoices):
    """Who a partner client is (issue 12: the three partners the province talks to)."""

    PUBLIC_SERVICE_PORTAL = "public_service_portal", _("National public-service portal")
    CITIZEN_APP = "citizen_app", _("Citizen identity app (VNeID-style)")
    PROVINCE_PORTAL = "province_portal", _("Another province's portal")


class Scope(models.TextChoices):
    """What a client may ask for. Each endpoint needs exactly one (docs/api.md)."""

    RECORDS_READ = "records:read", _("Read a student's issued records (with the student's consent)")
    RECORDS_VERIFY = "records:verify", _("Verify an uploaded record")
    PROGRESS_READ = "progress:read", _("Read progress by division and school")


class Purpose(models.TextChoices):
    """Why a call is made (personal data law 91/2025: purpose limitation). Sent with every call
    (X-Purpose) and checked against the client's allowed purposes; a consent token names one too."""

    ADMISSION = "admission", _("Admission to a school or university")
    TRANSFER = "transfer", _("Transfer of a student to another school")
    PUBLIC_SERVICE = "public_service", _("Administrative procedure of a public service")
    CITIZEN_SELF = "citizen_self", _("The citizen reads their own records")
    DOCUMENT_CHECK = "document_check", _("Checking a transcript handed in by its holder")
    STATISTICS = "statistics", _("Statistics and supervision")


class ConsentAlgorithm(models.TextChoices):
    """The signature algorithms a consent token may use: asymmetric only (never HS256 or none)."""

    ES256 = "ES256", _("ECDSA P-256 with SHA-256 (ES256)")
    EDDSA = "EdDSA", _("Ed25519 (EdDSA)")
