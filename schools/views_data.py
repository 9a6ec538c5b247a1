"""Imports of a school's data (the score sheet export: transcripts.views_exports).

portal.middleware has already let the user into the school.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from .imports import (
    XLSX_CONTENT_TYPE,
    SchoolImportError,
    can_import_school_data,
    import_limits,
    import_template,
    school_data_import,
)

if TYPE_CHECKING:
    from portal.http import SchoolRequest


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("Excel file (.xlsx)"), widget=forms.FileInput(attrs={"accept": f".xlsx,{XLSX_CONTENT_TYPE}"})
    )


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    return HttpResponse(
        content,
        content_type=XLSX_CONTENT_TYPE,
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )


@require_http_methods(["GET", "POST"])
def data_import(request: SchoolRequest) -> HttpResponse:
    """The import page; a POST imports the uploaded workbook and shows the report or every problem.

    A refused file answers 400 with the page listing every problem (sheet, row, column, why).
    """
    school = request.school
    if not can_import_school_data(request.user, school):
        raise PermissionDenied
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    report = problems = None
    filename = ""
    max_bytes = import_limits().max_bytes
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    elif form.is_bound:
        upload = form.cleaned_data["file"]
        filename = upload.name
        try:
            # One byte over the limit is enough for the service to refuse the file as too large;
            # a larger upload is never read into memory whole.
            report = school_data_import(
                actor=request.user, school=school, data=upload.read(max_bytes + 1), filename=upload.name
            )
        except SchoolImportError as exc:
            problems = exc.problems
            status = 400
    return render(
        request,
        "schools/import.html",
        {
            "form": form,
            "report": report,
            "problems": problems,
            "filename": filename,
            "max_mb": max_bytes // (1024 * 1024),
        },
        status=status,
    )


@require_GET
def data_import_template(request: SchoolRequest) -> HttpResponse:
    """The empty workbook to fill in."""
    if not can_import_school_data(request.user, request.school):
        raise PermissionDenied
    return _xlsx(import_template(), "mau-nhap-du-lieu.xlsx")
