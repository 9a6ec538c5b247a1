"""Access helpers of the transcripts pages: the object asked for, or 404; 403 when it is visible
but the user may not do what the page does (style.md rules 3 and 7). One family for the class and
the year record, and the school's redirects by URL name.

portal.middleware has already let the user into the school (the tenant), so every lookup here is
scoped to it by the schema; what remains is the finer permission, asked as a capability.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from portal.models import School, User
from portal.permissions import access_for, can_open_school_data
from schools.models import CurriculumEntry, Enrolment, SchoolClass, SchoolYear, Student, Term

from .book import can_attach_records
from .models import YearRecord
from .permissions import LEADERS, assigned_teacher_id, can_view_gradebook

if TYPE_CHECKING:
    from portal.http import SchoolRequest


class Capability(StrEnum):
    """What the page does with the object, so what the helper checks before handing it over."""

    # Only looked up: the service the view calls checks who may write (a cell save, a step).
    LOOKUP = "lookup"
    # Opened: the class's homeroom teacher, the school's leaders, supervisors with a data grant.
    VIEW = "view"
    # A student's book: earlier records from other schools attached to it (the school's leaders).
    ATTACH = "attach"


def _check(request: SchoolRequest, school_class: SchoolClass, capability: Capability) -> None:
    if capability == Capability.VIEW and not can_view_gradebook(
        request.user, request.school, school_class, None
    ):
        raise PermissionDenied(
            _("Only the class's homeroom teacher and the school's leaders open its records.")
        )


def class_for(request: SchoolRequest, class_id: int, *, capability: Capability) -> SchoolClass:
    """The school's class `class_id` (its year, homeroom teacher and approver joined), or 404;
    PermissionDenied (403) when the user may not do `capability` with it."""
    school_class = (
        SchoolClass.objects.filter(pk=class_id)
        .select_related("school_year", "homeroom_teacher", "closed_by")
        .first()
    )
    if school_class is None:
        raise Http404
    _check(request, school_class, capability)
    return school_class


def class_and_entry_for(
    request: SchoolRequest, class_id: int, subject_code: str, *, capability: Capability
) -> tuple[SchoolClass, CurriculumEntry, int | None]:
    """A class's grade book in one subject: the class, the curriculum entry and (to open it) the
    subject's teacher; 404 when either is unknown, PermissionDenied (403) when the user may not
    open this book (the subject's teacher, the homeroom teacher, the leaders, a data grant)."""
    school_class = class_for(request, class_id, capability=Capability.LOOKUP)
    entry = (
        CurriculumEntry.objects.filter(
            school_year_id=school_class.school_year_id, grade=school_class.grade, subject__code=subject_code
        )
        .select_related("subject")
        .first()
    )
    if entry is None:
        raise Http404
    if capability == Capability.LOOKUP:  # the service checks who may write
        return school_class, entry, None
    teacher_id = assigned_teacher_id(school_class, entry.subject_id)
    if not can_view_gradebook(request.user, request.school, school_class, teacher_id):
        raise PermissionDenied
    return school_class, entry, teacher_id


def can_view_book(user: User, school: School, student: Student) -> bool:
    """A student's book: the school's leaders and administrator, the student's homeroom teachers,
    and supervisors under a data grant."""
    roles = access_for(user).roles_in_school(school.pk)
    if roles & LEADERS:
        return True
    if not roles:
        return can_open_school_data(user, school)
    return Enrolment.objects.filter(student=student, school_class__homeroom_teacher=user).exists()


def student_for(request: SchoolRequest, student_id: int, *, capability: Capability) -> Student:
    """The school's student `student_id`, or 404; PermissionDenied (403) when the user may not
    open their book (VIEW) or attach earlier records to it (ATTACH)."""
    student = Student.objects.filter(pk=student_id).first()
    if student is None:
        raise Http404
    if capability == Capability.VIEW:
        allowed = can_view_book(request.user, request.school, student)
    elif capability == Capability.ATTACH:
        allowed = can_attach_records(request.user, request.school)
    else:
        allowed = True
    if not allowed:
        raise PermissionDenied
    return student


def term_for(request: SchoolRequest, term_id: int) -> Term:
    """The school's term `term_id`, or 404 (the service checks who may lock it)."""
    term = Term.objects.filter(pk=term_id).first()
    if term is None:
        raise Http404
    return term


def current_school_year(request: SchoolRequest) -> SchoolYear:
    """The school's current school year, or 404 before one is opened."""
    year = SchoolYear.objects.filter(is_current=True).first()
    if year is None:
        raise Http404("No current school year")
    return year


def record_for(request: SchoolRequest, record_pk: int, *, capability: Capability) -> YearRecord:
    """The school's year record version `record_pk` (student and class joined), or 404;
    PermissionDenied (403) when the user may not do `capability` with its class."""
    record = (
        YearRecord.objects.filter(pk=record_pk)
        .select_related("enrolment__student", "enrolment__school_class")
        .first()
    )
    if record is None:
        raise Http404
    _check(request, record.enrolment.school_class, capability)
    return record


def school_url(request: SchoolRequest, view_name: str, **kwargs: Any) -> str:
    """A URL inside the request's school by its name (the view-side `{% school_url %}`)."""
    return reverse(view_name, kwargs={"school_code": request.school.code, **kwargs})


def school_redirect(request: SchoolRequest, view_name: str, **kwargs: Any) -> HttpResponseRedirect:
    """Redirect to a page of the request's school, by URL name."""
    return redirect(school_url(request, view_name, **kwargs))
