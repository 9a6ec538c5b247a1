"""The score sheet download. portal.middleware has already let the user into the school."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from schools.choices import XLSX_CONTENT_TYPE
from schools.models import SchoolClass

from .exports import can_export_score_sheet, score_sheet_export

if TYPE_CHECKING:
    from portal.http import SchoolRequest


@require_GET
def score_sheet(request: SchoolRequest, class_id: int) -> HttpResponse:
    """A class's score sheet for term ?hk=1 (default) or ?hk=2, as an .xlsx download."""
    school_class = SchoolClass.objects.filter(pk=class_id).select_related("school_year").first()
    if school_class is None:
        raise Http404
    if not can_export_score_sheet(request.user, request.school, school_class):
        raise PermissionDenied
    term = {"1": 1, "2": 2}.get(request.GET.get("hk", "1"))
    if term is None:
        raise Http404
    content = score_sheet_export(school_class=school_class, term=term, school=request.school)
    filename = f"bang-diem-{slugify(school_class.name)}-hk{term}-{school_class.school_year.code}.xlsx"
    return HttpResponse(
        content,
        content_type=XLSX_CONTENT_TYPE,
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )
