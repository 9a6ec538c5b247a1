"""The partner API's views (docs/api.md). Thin: check access, validate, call a selector or a
service, answer; every call, whatever its outcome, is logged (ApiCall) by PartnerView.

Access, in this order for every call: the key (401), the client's throttle (429), the scope and
the purpose (403, or 400 without a purpose); then the view's own checks: input (400), consent
(403), existence (404). A student's records, XML and PDF all need the citizen's consent token: they
are personal data (law 91/2025), and a record id alone (sequential) must not open them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.models import Division, IssuedRecord, School
from portal.progress.selectors import progress_by_division, progress_by_school, progress_years
from portal.selectors import personal_id_digest
from registry.verification import VerifyUploadLimit, max_upload_bytes, verify_upload
from transcripts.records.selectors import DocumentUnavailable

from .auth import ClientRateThrottle, HasPurpose, HasScope, PartnerKeyAuthentication, purpose_of
from .choices import Scope
from .consent import Consent, consent_check
from .errors import ApiError, error_body
from .selectors import issued_pdf, issued_record_of, issued_records_of, issued_xml_copy, personal_id_valid
from .serializers import (
    COMMON_ERRORS,
    CONSENT_PARAMETER,
    PURPOSE_PARAMETER,
    ProgressOutput,
    ProgressQuery,
    ProgressSchoolsQuery,
    StudentRecordsInput,
    StudentRecordsOutput,
    VerificationInput,
    VerificationOutput,
    errors,
)
from .services import api_call_log

log = logging.getLogger(__name__)


class FirstRenderer(BaseContentNegotiation):
    """Always JSON (or the view's own bytes): a client's Accept header never turns into a 406."""

    def select_parser(self, request, parsers):
        for parser in parsers:
            if parser.media_type.split(";")[0] == (request.content_type or "").split(";")[0].strip():
                return parser
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@dataclass
class CallNote:
    """What a view adds to its call's log row."""

    personal_id_digest: str = ""
    consent_jti: str = ""
    record_id: str = ""
    version: int | None = None
    sha256: str = ""


class PartnerView(APIView):
    """Base of every /api/v1/ view: key, throttle, scope, purpose; JSON errors; the call log."""

    required_scope: str = ""
    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [HasScope, HasPurpose]
    throttle_classes = [ClientRateThrottle]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    content_negotiation_class = FirstRenderer

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # DRF's order, but throttled before the scope and purpose checks: a client refused for
        # its scope still spends its budget (hammering with the wrong scope is hammering).
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        self.perform_authentication(request)
        self.check_throttles(request)
        self.check_permissions(request)
        # Before the body is parsed (lazily, by the handler): DRF's parsers read a JSON body whole,
        # whatever its size (Django's DATA_UPLOAD_MAX_MEMORY_SIZE guards request.body only).
        if _content_length(request) > self.max_body_bytes():
            raise _too_large()

    def max_body_bytes(self) -> int:
        """The largest request body this view reads: a JSON body is a few hundred bytes."""
        return 64 * 1024

    def dispatch(self, request, *args: Any, **kwargs: Any):
        started = time.monotonic()
        self.note = CallNote()
        status_code = 500
        try:
            response = super().dispatch(request, *args, **kwargs)
            status_code = response.status_code
            return response
        finally:
            self._log(status_code, started)

    def _log(self, status_code: int, started: float) -> None:
        drf = getattr(self, "request", None)
        client = getattr(drf, "_user", None) or getattr(drf, "_api_key_client", None)
        match = drf.resolver_match if drf is not None else None
        api_call_log(
            client=client if client is not None and getattr(client, "pk", None) else None,
            key_prefix=getattr(drf, "_api_key_prefix", "") if drf is not None else "",
            purpose=purpose_of(drf) if drf is not None else "",
            method=(drf.method if drf is not None else "") or "",
            path="/" + (match.route if match is not None else ""),
            status_code=status_code,
            duration_ms=int((time.monotonic() - started) * 1000),
            error_code=getattr(drf, "_api_error_code", "") if status_code >= 400 else "",
            personal_id_digest=self.note.personal_id_digest,
            consent_jti=self.note.consent_jti,
            record_id=self.note.record_id,
            version=self.note.version,
            sha256=self.note.sha256,
        )

    def consent(self, request: Request, *, personal_id: str | None = None) -> Consent:
        """The citizen's consent for this call (X-Consent-Token), or a 403 saying why not."""
        try:
            consent = consent_check(
                token=request.headers.get("X-Consent-Token", ""),
                client=request.user,
                purpose=purpose_of(request),
                personal_id=personal_id,
            )
        except ApiError as refused:
            self.note.consent_jti = getattr(refused, "jti", "")
            raise
        self.note.consent_jti = consent.jti
        return consent


def _record_links(request: Request, entry: IssuedRecord) -> dict[str, str]:
    args = [entry.record_id, entry.version]
    return {
        "xml": request.build_absolute_uri(reverse("api:record_xml", args=args)),
        "pdf": request.build_absolute_uri(reverse("api:record_pdf", args=args)),
    }


def _school(school: School) -> dict[str, str]:
    return {"code": school.code, "name": school.name}


# --- Records -------------------------------------------------------------------------------------


class StudentRecordsView(PartnerView):
    """POST /api/v1/students/records/: a citizen's issued records, by personal ID, with consent.

    The number travels in the body, not the URL: URLs end up in access logs and proxies' caches.
    """

    required_scope = Scope.RECORDS_READ

    @extend_schema(
        operation_id="student_records",
        summary="A student's issued records, by personal ID (records:read + consent)",
        parameters=[PURPOSE_PARAMETER, CONSENT_PARAMETER],
        request=StudentRecordsInput,
        responses={200: StudentRecordsOutput, **errors(*COMMON_ERRORS, 415)},
        tags=["records"],
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}  # JSON null, a list …: no fields
        given = StudentRecordsInput(data=data)
        if not given.is_valid():
            if "personal_id" in given.errors and "personal_id" in data:
                raise ApiError("invalid_personal_id", _("A personal ID number is exactly 12 digits (0-9)."))
            given.is_valid(raise_exception=True)
        personal_id = given.validated_data["personal_id"]
        if not personal_id_valid(personal_id):  # the pattern's digits are ASCII: checked again
            raise ApiError("invalid_personal_id", _("A personal ID number is exactly 12 digits (0-9)."))
        self.note.personal_id_digest = personal_id_digest(personal_id)
        self.consent(request, personal_id=personal_id)
        entries = issued_records_of(personal_id=personal_id)
        records = [
            {
                "record_id": e.record_id,
                "version": e.version,
                "school": _school(e.school),
                "school_year": e.school_year,
                "status": e.status,
                "issued_at": e.issued_at,
                "status_changed_at": e.status_changed_at,
                "sha256": e.sha256,
                "links": _record_links(request, e),
            }
            for e in entries
        ]
        return Response(StudentRecordsOutput({"records": records}).data)


class RecordDocumentView(PartnerView):
    """Base of the XML and PDF of one version: the holder's consent, then the bytes, logged."""

    required_scope = Scope.RECORDS_READ
    fmt = ""
    content_type = ""

    def document(self, entry: IssuedRecord) -> bytes | None:  # pragma: no cover -- overridden
        raise NotImplementedError

    def get(self, request: Request, record_id: str, version: int) -> HttpResponse:
        self.note.record_id, self.note.version = record_id[:64], version if 0 < version < 2**31 else None
        consent = self.consent(request)
        self.note.personal_id_digest = personal_id_digest(consent.subject)
        entry = issued_record_of(personal_id=consent.subject, record_id=record_id, version=version)
        if entry is None:
            # Unknown, or not the consenting person's: the same answer (ids are sequential).
            raise ApiError(
                "record_not_found",
                _("No issued record of the consenting person has this id and version."),
                status_code=404,
            )
        try:
            data = self.document(entry)
        except DocumentUnavailable as error:  # missing from the storage or changed there: never served
            log.error("API download refused: %s v%s: %s", entry.record_id, entry.version, error)
            raise ApiError(
                "document_unavailable",
                _("This record's stored document cannot be handed out now; the portal's operators are told."),
                status_code=503,
            ) from error
        if data is None:
            raise ApiError(
                "document_not_ready",
                _("This record's document is not available yet; try again later."),
                status_code=404,
            )
        self.note.sha256 = hashlib.sha256(data).hexdigest()
        response = HttpResponse(data, content_type=self.content_type)
        response["Content-Disposition"] = cast(
            str, content_disposition_header(True, f"{entry.record_id}-v{entry.version}.{self.fmt}")
        )
        response["X-Record-Status"] = entry.status
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response


_DOCUMENT_ERRORS = errors(*COMMON_ERRORS, 404, 503)


class RecordXmlView(RecordDocumentView):
    """GET /api/v1/records/<id>/versions/<n>/xml/: the version's signed XML, as issued."""

    fmt, content_type = "xml", "application/xml"

    @extend_schema(
        operation_id="record_xml",
        summary="A record version's signed XML (records:read + the holder's consent)",
        parameters=[PURPOSE_PARAMETER, CONSENT_PARAMETER],
        responses={(200, "application/xml"): OpenApiResponse(OpenApiTypes.BINARY), **_DOCUMENT_ERRORS},
        tags=["records"],
    )
    def get(self, request: Request, record_id: str, version: int) -> HttpResponse:
        return super().get(request, record_id, version)

    def document(self, entry: IssuedRecord) -> bytes | None:
        return issued_xml_copy(entry)


class RecordPdfView(RecordDocumentView):
    """GET /api/v1/records/<id>/versions/<n>/pdf/: the version's PDF/A-3b (the XML attached)."""

    fmt, content_type = "pdf", "application/pdf"

    @extend_schema(
        operation_id="record_pdf",
        summary="A record version's PDF/A-3b (records:read + the holder's consent)",
        parameters=[PURPOSE_PARAMETER, CONSENT_PARAMETER],
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY), **_DOCUMENT_ERRORS},
        tags=["records"],
    )
    def get(self, request: Request, record_id: str, version: int) -> HttpResponse:
        return super().get(request, record_id, version)

    def document(self, entry: IssuedRecord) -> bytes | None:
        return issued_pdf(entry)


# --- Verification --------------------------------------------------------------------------------


class VerificationView(PartnerView):
    """POST /api/v1/verifications/: verify an uploaded record (XML or PDF), as the public page does."""

    required_scope = Scope.RECORDS_VERIFY
    parser_classes = [MultiPartParser]

    def max_body_bytes(self) -> int:
        # The file, and room for the multipart envelope (as the public page's VerifyUploadLimit).
        return max_upload_bytes() + 64 * 1024

    @extend_schema(
        operation_id="verify_upload",
        summary="Verify an uploaded year record, XML or PDF (records:verify)",
        parameters=[PURPOSE_PARAMETER],
        request={"multipart/form-data": VerificationInput},
        responses={200: VerificationOutput, **errors(*COMMON_ERRORS, 415)},
        tags=["verification"],
    )
    def post(self, request: Request) -> Response:
        limit = max_upload_bytes()
        guard = VerifyUploadLimit(request._request)
        # Before the body is parsed, so that a large file is never stored (as the public page).
        cast("list[FileUploadHandler]", request._request.upload_handlers).insert(0, guard)
        upload = request.FILES.get("file")
        if guard.exceeded or (upload is not None and cast(int, upload.size) > limit):
            raise _too_large()
        if upload is None:
            raise ApiError("file_required", _("Send the XML or PDF file in the multipart field “file”."))
        data = upload.read(limit + 1)
        upload.close()
        if len(data) > limit:
            raise _too_large()
        with translation.override("vi"):
            result = verify_upload(data=data)
        entry = result.entry
        if entry is not None:
            self.note.record_id, self.note.version = entry.record_id, entry.version
        record = None
        if result.found and entry is not None:
            record = {
                "record_id": entry.record_id,
                "version": entry.version,
                "school": _school(entry.school),
                "school_year": entry.school_year,
                "status": entry.status,
                "issued_at": entry.issued_at,
                "newer_version": result.newer.version if result.newer is not None else None,
            }
        signatures = [
            {
                "position": s.position,
                "role": s.role,
                "signer": s.signer,
                "title": s.title,
                "signed_at": s.signed_at,
                "ok": s.ok,
                "problems": [str(p.code) for p in s.problems],
                "timestamp": s.timestamp,
                "level": s.level,
                "notes": [str(n.code) for n in s.notes],
            }
            for s in result.signatures
        ]
        body = {
            "outcome": result.outcome,
            "reason": result.reason,
            "message": str(result.message),
            "record": record,
            "signatures": signatures,
        }
        return Response(VerificationOutput(body).data)


def _content_length(request: Request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _too_large() -> ApiError:
    return ApiError(
        "too_large",
        _("The file is larger than %(size)d MB: a year record is much smaller.")
        % {"size": max_upload_bytes() // (1024 * 1024)},
        status_code=413,
    )


# --- Progress ------------------------------------------------------------------------------------


def _school_year(request: Request, query: ProgressQuery) -> str:
    query.is_valid(raise_exception=True)
    asked = query.validated_data.get("school_year", "")
    if asked:
        first, second = asked.split("-")
        if int(second) != int(first) + 1:
            raise ApiError("invalid_school_year", _("A school year is written like 2025-2026."))
        return asked
    years = progress_years()
    return years[0] if years else ""


def _rows(rows) -> list[dict[str, Any]]:
    return [
        {
            "kind": r.kind,
            "key": r.key,
            "name": r.name,
            "division_code": r.division_code,
            "schools": r.schools,
            "counters": dict(r.counters),
            "records_signed": r.records_signed,
            "completion": r.completion,
            "rejections": dict(r.rejections),
        }
        for r in rows
    ]


class ProgressDivisionsView(PartnerView):
    """GET /api/v1/progress/divisions/: each division's figures, then the department's own schools'."""

    required_scope = Scope.PROGRESS_READ

    @extend_schema(
        operation_id="progress_divisions",
        summary="Progress by division (progress:read)",
        parameters=[PURPOSE_PARAMETER, ProgressQuery],
        responses={200: ProgressOutput, **errors(*COMMON_ERRORS)},
        tags=["progress"],
    )
    def get(self, request: Request) -> Response:
        school_year = _school_year(request, ProgressQuery(data=request.query_params))
        rows = progress_by_division(school_year=school_year) if school_year else []
        return Response(ProgressOutput({"school_year": school_year, "rows": _rows(rows)}).data)


class ProgressSchoolsView(PartnerView):
    """GET /api/v1/progress/schools/: each school's figures, of one division (or all)."""

    required_scope = Scope.PROGRESS_READ

    @extend_schema(
        operation_id="progress_schools",
        summary="Progress by school, optionally of one division (progress:read)",
        parameters=[PURPOSE_PARAMETER, ProgressSchoolsQuery],
        responses={200: ProgressOutput, **errors(*COMMON_ERRORS, 404)},
        tags=["progress"],
    )
    def get(self, request: Request) -> Response:
        query = ProgressSchoolsQuery(data=request.query_params)
        school_year = _school_year(request, query)
        division = query.validated_data.get("division", "")
        schools = School.objects.all()
        if division == "direct":
            schools = schools.filter(division__isnull=True)
        elif division:
            schools = schools.filter(division__code=division)
            if not schools.exists() and not _division_exists(division):
                raise ApiError("division_not_found", _("No division has this code."), status_code=404)
        rows = progress_by_school(school_year=school_year, schools=schools) if school_year else []
        return Response(ProgressOutput({"school_year": school_year, "rows": _rows(rows)}).data)


def _division_exists(code: str) -> bool:
    return Division.objects.filter(code=code).exists()


def not_found(request, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any other address under /api/: a JSON 404 (never Django's HTML page)."""
    return JsonResponse(error_body("not_found", _("Nothing was found at this address.")), status=404)
