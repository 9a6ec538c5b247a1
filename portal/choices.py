"""Enumerations of the public schema: division kinds, school levels, roles, audit actions."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class DivisionKind(models.TextChoices):
    DISTRICT_OFFICE = "district_office", _("District education office")
    COMMUNE = "commune", _("Commune/ward authority")
    CLUSTER = "cluster", _("School cluster")


class SchoolLevel(models.TextChoices):
    PRIMARY = "primary", _("Primary")
    LOWER_SECONDARY = "lower_secondary", _("Lower secondary")
    UPPER_SECONDARY = "upper_secondary", _("Upper secondary")
    CONTINUING = "continuing", _("Continuing education")


class ScopeKind(models.TextChoices):
    DEPARTMENT = "department", _("Department")
    DIVISION = "division", _("Division")
    SCHOOL = "school", _("School")


class Role(models.TextChoices):
    """The roles of domain.md §2. Each role has exactly one kind of scope (ROLE_SCOPE)."""

    DEPARTMENT_ADMIN = "department_admin", _("Department administrator")
    DEPARTMENT_OFFICER = "department_officer", _("Department officer")
    DIVISION_OFFICER = "division_officer", _("Division officer")
    SCHOOL_ADMIN = "school_admin", _("School administrator")
    PRINCIPAL = "principal", _("Principal")
    VICE_PRINCIPAL = "vice_principal", _("Vice-principal")
    HOMEROOM_TEACHER = "homeroom_teacher", _("Homeroom teacher")
    SUBJECT_TEACHER = "subject_teacher", _("Subject teacher")


ROLE_SCOPE: dict[str, str] = {
    Role.DEPARTMENT_ADMIN: ScopeKind.DEPARTMENT,
    Role.DEPARTMENT_OFFICER: ScopeKind.DEPARTMENT,
    Role.DIVISION_OFFICER: ScopeKind.DIVISION,
    Role.SCHOOL_ADMIN: ScopeKind.SCHOOL,
    Role.PRINCIPAL: ScopeKind.SCHOOL,
    Role.VICE_PRINCIPAL: ScopeKind.SCHOOL,
    Role.HOMEROOM_TEACHER: ScopeKind.SCHOOL,
    Role.SUBJECT_TEACHER: ScopeKind.SCHOOL,
}

SCHOOL_ROLES = frozenset(role for role, scope in ROLE_SCOPE.items() if scope == ScopeKind.SCHOOL)
TEACHER_ROLES = frozenset({Role.HOMEROOM_TEACHER, Role.SUBJECT_TEACHER})
SCHOOL_LEADER_ROLES = frozenset({Role.PRINCIPAL, Role.VICE_PRINCIPAL})
# Roles that must log in with a second factor (TOTP): those who sign for the school and administrators.
TWO_FACTOR_ROLES = frozenset({Role.DEPARTMENT_ADMIN, Role.SCHOOL_ADMIN, Role.PRINCIPAL, Role.VICE_PRINCIPAL})


class AuditAction(models.TextChoices):
    ROLE_GRANTED = "role_granted", _("Role granted")
    ROLE_REVOKED = "role_revoked", _("Role revoked")
    ROLE_EXPIRED = "role_expired", _("Role expired")
    SCHOOL_PROVISIONED = "school_provisioned", _("School provisioned")
    SCHOOL_CHANGED = "school_changed", _("School changed")
    DIVISION_CREATED = "division_created", _("Division created")
    DIVISION_CHANGED = "division_changed", _("Division changed")
    USER_CREATED = "user_created", _("User created")
    USER_CHANGED = "user_changed", _("User changed")
    SCHOOL_DATA_VIEWED = "school_data_viewed", _("School data viewed under a data grant")
    TERM_LOCKED = "term_locked", _("Term locked")
    TERM_UNLOCKED = "term_unlocked", _("Term unlocked")
    SCHOOL_DATA_IMPORTED = "school_data_imported", _("School data imported from a file")
    CLASS_YEAR_APPROVED = "class_year_approved", _("Class year approved")
    CLASS_SUMMER_CLOSED = "class_summer_closed", _("Class re-assessment closed")
    YEAR_RECORD_ATTACHED = "year_record_attached", _("Earlier year record attached to a student's book")
    YEAR_RECORDS_CREATED = "year_records_created", _("Year records created")
    YEAR_RECORD_STATUS_CHANGED = "year_record_status_changed", _("Year record status changed")
    YEAR_RECORD_CORRECTION = "year_record_correction", _("Year record correction requested")
    YEAR_RECORD_CORRECTION_APPROVED = "year_record_correction_approved", _("Year record correction approved")
    YEAR_RECORD_REVOKED = "year_record_revoked", _("Year record revoked")
    YEAR_RECORD_SIGNED = "year_record_signed", _("Year record signed")
    YEAR_RECORD_RENEWED = "year_record_renewed", _("Year record renewed with archive timestamps")
    CERTIFICATE_REGISTERED = "certificate_registered", _("Signing certificate registered")
    CERTIFICATE_REMOVED = "certificate_removed", _("Signing certificate removed")
    SIGNING_BATCH_STARTED = "signing_batch_started", _("Signing batch started")
    SIGNING_BATCH_CONFIRMED = "signing_batch_confirmed", _("Signing batch confirmed")
    SIGNING_BATCH_CANCELLED = "signing_batch_cancelled", _("Signing batch cancelled")
    SIGNING_BATCH_FINISHED = "signing_batch_finished", _("Signing batch finished")
    MINISTRY_MESSAGE_REPLAYED = "ministry_message_replayed", _("Message to the Ministry sent again")
    PROGRESS_RECONCILED = "progress_reconciled", _("School progress recounted and corrected")
    PARTNER_CLIENT_REGISTERED = "partner_client_registered", _("API partner registered")
    PARTNER_CLIENT_CHANGED = "partner_client_changed", _("API partner changed")
    PARTNER_KEY_ISSUED = "partner_key_issued", _("API key issued")
    PARTNER_KEY_REVOKED = "partner_key_revoked", _("API key revoked")
    CONSENT_ISSUER_REGISTERED = "consent_issuer_registered", _("Consent issuer registered")
    CONSENT_ISSUER_CHANGED = "consent_issuer_changed", _("Consent issuer changed")
    ARCHIVE_DOWNLOADED = "archive_downloaded", _("Archive of issued records downloaded")
    ARCHIVE_EXPORT_REQUESTED = "archive_export_requested", _("Archive of issued records requested")
    TEACHER_CLASSES_HANDED_OVER = "teacher_classes_handed_over", _("Teacher's classes handed over")


# The province's index of issued records (portal.IssuedRecord), its public verifications and the
# copies handed out.
# Crockford's base32 alphabet (no I, L, O, U): a code a person can read off paper and type.
VERIFICATION_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 16 symbols of 5 bits: 80 bits of randomness.
VERIFICATION_CODE_LENGTH = 16


class IssuedRecordStatus(models.TextChoices):
    ISSUED = "issued", _("Current")
    SUPERSEDED = "superseded", _("Superseded")
    REVOKED = "revoked", _("Revoked")


class VerificationMethod(models.TextChoices):
    RECORD_ID = "record_id", _("Record id typed in")
    UPLOAD_XML = "upload_xml", _("XML file uploaded")
    UPLOAD_PDF = "upload_pdf", _("PDF file uploaded")
    QR = "qr", _("QR code")


class VerificationOutcome(models.TextChoices):
    FOUND = "found", _("Found")
    NOT_FOUND = "not_found", _("Not found")
    REFUSED = "refused", _("Refused")


class CopyFormat(models.TextChoices):
    XML = "xml", _("XML")
    PDF = "pdf", _("PDF")
