"""A student's personal data exported on request, from the student's page in the school
(/truong/<code>/du-lieu-ca-nhan/<student id>/): GET the form, POST the reason, get the ZIP.

portal.middleware has already let the user into this school (404 for another school's staff and
for supervisors of other divisions); a student id not in this school's schema is a 404; a user of
the school who may not export (portal.permissions.can_export_personal_data) gets 403.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from portal.permissions import can_export_personal_data
from schools.models import Student

from .models_privacy import REASON_MAX_LENGTH, PersonalDataExportChannel
from .privacy import student_data_export
from .privacy_gather import ExportSubject, safe_name

if TYPE_CHECKING:
    from portal.http import SchoolRequest


@require_http_methods(["GET", "POST"])
def student_data_export_page(request: SchoolRequest, student_id: int) -> HttpResponse | FileResponse:
    """GET: what the export holds and the reason field; POST: export, log, download the ZIP."""
    student = Student.objects.filter(pk=student_id).first()
    if student is None:
        raise Http404
    if not can_export_personal_data(request.user, request.school):
        raise PermissionDenied(_("Only the school's principal exports a student's personal data."))
    error = ""
    reason = ""
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        # On disk, not in memory (a student's PDFs add up); FileResponse closes it once sent, so no
        # context manager here.
        out = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            export = student_data_export(
                actor=request.user,
                subjects=[ExportSubject(school=request.school, student_id=student.pk)],
                reason=reason,
                channel=PersonalDataExportChannel.PAGE,
                out=out,
                school=request.school,
            )
        except ValidationError as exc:
            out.close()
            error = " ".join(exc.messages)
        except BaseException:
            out.close()
            raise
        else:
            out.seek(0)
            day = timezone.localdate(export.at).strftime("%Y%m%d")
            response = FileResponse(
                out,
                as_attachment=True,
                filename=f"du-lieu-ca-nhan-{safe_name(student.student_code)}-{day}.zip",
                content_type="application/zip",
            )
            response["Cache-Control"] = "no-store"
            response["X-Export-Reference"] = str(export.reference)
            return response
    return render(
        request,
        "registry/student_data_export.html",
        {"student": student, "error": error, "reason": reason[:REASON_MAX_LENGTH], "max": REASON_MAX_LENGTH},
        status=400 if error else 200,
    )
