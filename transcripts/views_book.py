"""A student's book (every year, from whichever school issued it) and attaching earlier records.

portal.middleware has already let the user into this school (404 for another school's staff).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from portal.models import IssuedRecord

from .access import Capability, school_redirect, student_for
from .book import can_attach_records, prior_record_attach, prior_records_find, student_book

if TYPE_CHECKING:
    from portal.http import SchoolRequest


@require_GET
def book(request: SchoolRequest, student_id: int) -> HttpResponse:
    """Every year of the student, in order, each with a link to its public verification page."""
    student = student_for(request, student_id, capability=Capability.VIEW)
    return render(
        request,
        "transcripts/book.html",
        {
            "student": student,
            "years": student_book(school=request.school, student=student),
            "can_attach": can_attach_records(request.user, request.school),
        },
    )


@require_http_methods(["GET", "POST"])
def book_find(request: SchoolRequest, student_id: int) -> HttpResponse:
    """GET: the records other schools issued for the student; POST: verify and attach one."""
    student = student_for(request, student_id, capability=Capability.ATTACH)
    error = ""
    if request.method == "POST":
        try:
            entry = IssuedRecord.objects.get(pk=int(request.POST.get("issued_record", "")))
        except (ValueError, IssuedRecord.DoesNotExist):
            raise Http404 from None
        try:
            attached = prior_record_attach(
                actor=request.user, school=request.school, student=student, issued_record=entry
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(
                request,
                _("Year %(year)s from %(school)s verified and attached.")
                % {"year": attached.school_year, "school": attached.source_school_name},
            )
            return school_redirect(request, "transcripts_book:book", student_id=student.pk)
    return render(
        request,
        "transcripts/book_find.html",
        {
            "student": student,
            "candidates": prior_records_find(school=request.school, student=student),
            "no_personal_id": not student.personal_id,
            "error": error,
        },
        status=400 if error else 200,
    )
