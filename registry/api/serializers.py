"""Input and output of the partner API (style.md rule 4: one view per operation, nested serializers).

The output serializers describe the answers for the OpenAPI schema (drf-spectacular) and shape
them; the error serializer is declared for every refusal status each view can give.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .choices import Purpose


class ErrorSerializer(serializers.Serializer):
    """Every refusal: the Vietnamese message first, a stable code, the English message."""

    message = serializers.CharField(help_text="Thông điệp tiếng Việt / the message in Vietnamese")
    code = serializers.CharField(help_text="A stable code for programs (docs/api.md)")
    message_en = serializers.CharField(help_text="The message in English")
    errors = serializers.DictField(required=False, help_text="Per-field problems of invalid input")


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses of a view, for its schema."""
    return {status: OpenApiResponse(ErrorSerializer, description=f"Error {status}") for status in statuses}


# Every authenticated call: key missing or wrong (401), no purpose (400), scope or purpose refused
# (403), a body too large (413), too many calls (429).
COMMON_ERRORS = (400, 401, 403, 413, 429)

PURPOSE_PARAMETER = OpenApiParameter(
    name="X-Purpose",
    location=OpenApiParameter.HEADER,
    required=True,
    enum=Purpose.values,
    description="Why the call is made: one of the client's allowed purposes (logged with the call).",
)
CONSENT_PARAMETER = OpenApiParameter(
    name="X-Consent-Token",
    location=OpenApiParameter.HEADER,
    required=True,
    description="The citizen's consent: a JWT signed by a registered consent issuer (docs/api.md).",
)


# --- Records -------------------------------------------------------------------------------------


class StudentRecordsInput(serializers.Serializer):
    personal_id = serializers.RegexField(
        r"^[0-9]{12}$", max_length=64, help_text="The citizen's 12-digit personal ID number."
    )


class SchoolOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class RecordLinksOutput(serializers.Serializer):
    xml = serializers.CharField(help_text="The signed XML of this version (this API)")
    pdf = serializers.CharField(help_text="The PDF/A-3b of this version (this API)")


class IssuedRecordOutput(serializers.Serializer):
    record_id = serializers.CharField()
    version = serializers.IntegerField()
    school = SchoolOutput()
    school_year = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["issued", "superseded", "revoked"],
        help_text="issued: the version in force; superseded by a later version; revoked",
    )
    issued_at = serializers.DateTimeField()
    status_changed_at = serializers.DateTimeField()
    sha256 = serializers.CharField(help_text="SHA-256 of the signed XML as issued")
    links = RecordLinksOutput()


class StudentRecordsOutput(serializers.Serializer):
    records = IssuedRecordOutput(many=True)


# --- Verification --------------------------------------------------------------------------------


class VerificationInput(serializers.Serializer):
    file = serializers.FileField(help_text="The year record: its XML, or the PDF carrying it.")


class SignatureOutput(serializers.Serializer):
    position = serializers.IntegerField()
    role = serializers.CharField(allow_blank=True)
    signer = serializers.CharField(allow_blank=True)
    title = serializers.CharField(allow_blank=True)
    signed_at = serializers.DateTimeField(allow_null=True)
    ok = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField())
    timestamp = serializers.DateTimeField(
        allow_null=True,
        help_text="The time the signature's RFC 3161 timestamp proves (null: none that holds)",
    )
    level = serializers.ChoiceField(
        choices=["B", "T", "LT", "LTA"],
        help_text="B basic, T timestamped, LT with validation data (verifiable offline), LTA archived",
    )
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Facts that leave the signature valid: expired_since, revoked_since",
    )


class VerifiedRecordOutput(serializers.Serializer):
    record_id = serializers.CharField()
    version = serializers.IntegerField()
    school = SchoolOutput()
    school_year = serializers.CharField()
    status = serializers.ChoiceField(choices=["issued", "superseded", "revoked"])
    issued_at = serializers.DateTimeField()
    newer_version = serializers.IntegerField(allow_null=True)


class VerificationOutput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["found", "not_found", "refused"])
    reason = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True, help_text="In Vietnamese")
    record = VerifiedRecordOutput(allow_null=True)
    signatures = SignatureOutput(many=True)


# --- Progress ------------------------------------------------------------------------------------


class ProgressRowOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["division", "direct", "school"])
    key = serializers.CharField(help_text="The division's code, 'direct', or the school's code")
    name = serializers.CharField()
    division_code = serializers.CharField(allow_blank=True)
    schools = serializers.IntegerField()
    counters = serializers.DictField(child=serializers.IntegerField())
    records_signed = serializers.IntegerField()
    completion = serializers.FloatField(
        allow_null=True, help_text="Records acknowledged by the Ministry ÷ students (null without students)"
    )
    rejections = serializers.DictField(child=serializers.IntegerField())


class ProgressOutput(serializers.Serializer):
    school_year = serializers.CharField(allow_blank=True)
    rows = ProgressRowOutput(many=True)


class ProgressQuery(serializers.Serializer):
    school_year = serializers.RegexField(
        r"^[0-9]{4}-[0-9]{4}$", required=False, help_text="Like 2025-2026; the newest by default"
    )


class ProgressSchoolsQuery(ProgressQuery):
    division = serializers.CharField(
        required=False,
        max_length=50,
        help_text="A division's code, or 'direct' for the department's own schools",
    )
