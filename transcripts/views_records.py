"""The year records' pages of a school: a class's records, their lifecycle buttons, the downloads.

portal.middleware has already let the user into this school; here only the finer permission is
checked, and every button calls exactly one service of transcripts.records.services, which
checks who may make the step. A refusal (PermissionDenied) answers 403 — JSON for a script, a
page otherwise; a step that cannot be made (ValidationError) comes back as a message on the
class's page. Every copy of a record handed out (XML or PDF) is logged in portal.CopyLog before
the bytes leave (domain.md §1).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from portal.choices import CopyFormat

from . import hooks
from .access import Capability, class_for, record_for, school_url
from .choices import SignatureStep
from .models import YearRecord, YearRecordStatus
from .permissions import HOMEROOM, can_create_year_records, can_decide_on_records, can_make_step
from .records.pdf import ISSUED_LIKE
from .records.selectors import (
    DocumentTampered,
    DocumentUnavailable,
    class_record_rows,
    rendered_pdf_ids,
    year_record_pdf_bytes,
    year_record_xml_copy_bytes,
)
from .records.services import (
    CORRECTABLE,
    year_record_confirm,
    year_record_copy_log,
    year_record_correct,
    year_record_correction_approve,
    year_record_document,
    year_record_revoke,
    year_records_confirm_all,
    year_records_create,
)

if TYPE_CHECKING:
    from portal.http import SchoolRequest


S = YearRecordStatus
log = logging.getLogger(__name__)


# Helpers ------------------------------------------------------------------------------------


def _class_url(request: SchoolRequest, class_id: int) -> str:
    return school_url(request, "transcripts:records_class", class_id=class_id)


def _wants_json(request: SchoolRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _refused(request: SchoolRequest, exc: PermissionDenied) -> HttpResponse:
    """403: the service's reason, as JSON for a script or on a page for a person."""
    message = str(exc) or _("You may not do this.")
    if _wants_json(request):
        return JsonResponse({"error": message}, status=403)
    return render(request, "transcripts/records_refused.html", {"message": message}, status=403)


def _step(request: SchoolRequest, class_id: int, run: Callable[[], str]) -> HttpResponse:
    """Run one service; say how it went on the class's page (or answer 403 if refused)."""
    try:
        success = run()
    except PermissionDenied as exc:
        return _refused(request, exc)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, success)
    return redirect(_class_url(request, class_id))


def _reason(request: SchoolRequest) -> str:
    return request.POST.get("reason", "")


# The class's page ---------------------------------------------------------------------------


@require_GET
def records_class(request: SchoolRequest, class_id: int) -> HttpResponse:
    """A class's year records: each student's version and status, the downloads, the buttons."""
    try:
        school_class = class_for(request, class_id, capability=Capability.VIEW)
    except PermissionDenied as exc:
        return _refused(request, exc)
    rows = class_record_rows(school_class)
    rendered = rendered_pdf_ids(rows)
    user, school = request.user, request.school
    can_create = can_create_year_records(user, school, school_class)
    in_force = Counter(row.current.status for row in rows if row.current is not None)
    offers = hooks.signing_offers(user=user, school=school, school_class=school_class, status_counts=in_force)
    return render(
        request,
        "transcripts/records_class.html",
        {
            "school_class": school_class,
            "rows": rows,
            "rendered": rendered,
            "correctable": [s.value for s in CORRECTABLE],
            "with_records": sum(1 for row in rows if row.current or row.pending),
            "waiting": [row.enrolment.student.full_name for row in rows if row.waiting],
            "to_confirm": sum(1 for row in rows if row.current and row.current.status == S.DATA_COMPLETE),
            "can_create": can_create and school_class.closed_at is not None,
            "can_confirm": can_make_step(user, school, school_class, HOMEROOM),
            "can_correct": can_create,
            "can_decide": can_decide_on_records(user, school),
            "signing_offers": offers,
            "issued_statuses": ISSUED_LIKE,
            "statuses": YearRecordStatus,
            "steps": SignatureStep,
        },
    )


# The buttons --------------------------------------------------------------------------------


@require_POST
def records_create(request: SchoolRequest, class_id: int) -> HttpResponse:
    """Create the class's year records (once the principal approved its year). Their PDFs are
    rendered when they are issued (sealed), so that each embeds its issued document."""
    school_class = class_for(request, class_id, capability=Capability.LOOKUP)

    def run() -> str:
        outcome = year_records_create(actor=request.user, school=request.school, school_class=school_class)
        parts = [_("%(count)d year records created.") % {"count": len(outcome.created)}]
        if outcome.existing:
            parts.append(_("%(count)d students already had their record.") % {"count": outcome.existing})
        if outcome.waiting:
            parts.append(
                _("Waiting for the August close: %(names)s.") % {"names": ", ".join(outcome.waiting)}
            )
        return " ".join(parts)

    return _step(request, class_id, run)


@require_POST
def records_confirm_all(request: SchoolRequest, class_id: int) -> HttpResponse:
    """The homeroom teacher confirms every record of the class that is data complete, at once."""
    school_class = class_for(request, class_id, capability=Capability.LOOKUP)

    def run() -> str:
        count = year_records_confirm_all(actor=request.user, school=request.school, school_class=school_class)
        return _("%(count)d year records confirmed.") % {"count": count}

    return _step(request, class_id, run)


@require_POST
def record_confirm(request: SchoolRequest, record_pk: int) -> HttpResponse:
    """The homeroom teacher confirms one record's content."""
    record = record_for(request, record_pk, capability=Capability.LOOKUP)

    def run() -> str:
        year_record_confirm(actor=request.user, school=request.school, record=record)
        return _("The year record of %(name)s is confirmed.") % {"name": record.enrolment.student.full_name}

    return _step(request, record.enrolment.school_class_id, run)


@require_POST
def record_correct(request: SchoolRequest, record_pk: int) -> HttpResponse:
    """Ask for a correction (a new version, with a reason): the homeroom teacher or a leader."""
    record = record_for(request, record_pk, capability=Capability.LOOKUP)

    def run() -> str:
        correction = year_record_correct(
            actor=request.user, school=request.school, record=record, reason=_reason(request)
        )
        return _(
            "A correction of the year record of %(name)s is asked for (version %(version)d); "
            "it waits for the principal's approval."
        ) % {"name": record.enrolment.student.full_name, "version": correction.version}

    return _step(request, record.enrolment.school_class_id, run)


@require_POST
def record_correction_approve(request: SchoolRequest, record_pk: int) -> HttpResponse:
    """The principal approves a correction: it replaces the version in force."""
    record = record_for(request, record_pk, capability=Capability.LOOKUP)

    def run() -> str:
        approved = year_record_correction_approve(actor=request.user, school=request.school, record=record)
        return _(
            "The correction of the year record of %(name)s is approved: version %(version)d "
            "replaces the previous one."
        ) % {"name": record.enrolment.student.full_name, "version": approved.version}

    return _step(request, record.enrolment.school_class_id, run)


@require_POST
def record_revoke(request: SchoolRequest, record_pk: int) -> HttpResponse:
    """The principal withdraws a record version, with a reason."""
    record = record_for(request, record_pk, capability=Capability.LOOKUP)

    def run() -> str:
        revoked = year_record_revoke(
            actor=request.user, school=request.school, record=record, reason=_reason(request)
        )
        return _("The year record of %(name)s (version %(version)d) is revoked.") % {
            "name": record.enrolment.student.full_name,
            "version": revoked.version,
        }

    return _step(request, record.enrolment.school_class_id, run)


# The downloads ------------------------------------------------------------------------------


def _hand_out(
    request: SchoolRequest, record: YearRecord, data: bytes, fmt: str, content_type: str
) -> HttpResponse:
    """Log the copy (domain.md §1), then answer with exactly these bytes."""
    year_record_copy_log(actor=request.user, school=request.school, record=record, data=data, fmt=fmt)
    response = HttpResponse(data, content_type=content_type)
    # None only for an inline answer without a file name; an attachment always has the header.
    response["Content-Disposition"] = cast(
        str, content_disposition_header(True, f"{record.record_id}-v{record.version}.{fmt}")
    )
    response["Content-Length"] = str(len(data))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _unavailable(request: SchoolRequest, record: YearRecord, exc: DocumentUnavailable) -> HttpResponse:
    """A stored document missing or not matching its SHA-256: never served; said (503), logged."""
    log.error(
        "Download refused: %s v%s in %s (user %s): %s",
        record.record_id,
        record.version,
        request.school.code,
        request.user.pk,
        exc,
    )
    return render(
        request,
        "transcripts/records_document_unavailable.html",
        {
            "record": record,
            "tampered": isinstance(exc, DocumentTampered),
            "class_url": _class_url(request, record.enrolment.school_class_id),
        },
        status=503,
    )


@require_GET
def record_xml(request: SchoolRequest, record_pk: int) -> HttpResponse:
    """The record version's document as it stands: with the signatures it has so far; an issued
    version's stored copy (checked against its SHA-256) once its documents are stored."""
    try:
        record = record_for(request, record_pk, capability=Capability.VIEW)
    except PermissionDenied as exc:
        return _refused(request, exc)
    try:
        xml = year_record_xml_copy_bytes(record)
    except DocumentUnavailable as exc:
        return _unavailable(request, record, exc)
    if xml is None:
        xml = year_record_document(record)
    return _hand_out(request, record, xml, CopyFormat.XML, "application/xml")


@require_GET
def record_pdf(request: SchoolRequest, record_pk: int) -> HttpResponse:
    """The record version's PDF/A-3b, rendered once when it is issued and stored; 404 before."""
    try:
        record = record_for(request, record_pk, capability=Capability.VIEW)
    except PermissionDenied as exc:
        return _refused(request, exc)
    try:
        pdf = year_record_pdf_bytes(record)
    except DocumentUnavailable as exc:
        return _unavailable(request, record, exc)
    if pdf is None:
        return render(
            request,
            "transcripts/records_pdf_pending.html",
            {
                "record": record,
                "issued": record.status in ISSUED_LIKE,
                "class_url": _class_url(request, record.enrolment.school_class_id),
            },
            status=404,
        )
    return _hand_out(request, record, pdf, CopyFormat.PDF, "application/pdf")
