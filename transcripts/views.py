"""The grade book pages. portal.middleware has already let the user into this school."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from schools.choices import Ruleset, SubjectKind
from schools.models import SchoolClass

from .access import (
    Capability,
    class_and_entry_for,
    class_for,
    current_school_year,
    school_redirect,
    term_for,
)
from .choices import GENERAL_COMPETENCIES, QUALITIES, SPECIFIC_COMPETENCIES, PrimaryPeriod
from .permissions import can_edit_homeroom, can_edit_subject, can_lock_terms
from .results import COMPETENCY_CODES, QUALITY_CODES, class_results, class_results_compute
from .selectors import (
    cell_changes,
    gradebook_for,
    gradebook_index_books,
    quality_levels_for,
    summer_rows,
    term_is_locked,
    terms_of,
)
from .services import Cell, CellConflict, CellError, CellSaved, assessment_cell_save, term_lock_set
from .yearclose import class_summer_close, class_year_close, summer_cell_save

if TYPE_CHECKING:
    from portal.http import SchoolRequest


QUALITY_HEADERS = QUALITIES + GENERAL_COMPETENCIES + SPECIFIC_COMPETENCIES


class _MalformedCell(Exception):
    """A cell save whose student, term or period is not a number: a tampered or broken form."""


def _posted_number(request: SchoolRequest, name: str, *, required: bool = True) -> int | None:
    """A number from the cell save's form: ASCII digits only, at most 11 (an id, a term)."""
    data = request.POST if request.method == "POST" else request.GET
    value = data.get(name, "")
    if not value and not required:
        return None
    if not (value.isascii() and value.isdigit() and len(value) < 12):
        raise _MalformedCell(name)
    return int(value)


def _enrolment_id(request: SchoolRequest) -> int:
    return cast(int, _posted_number(request, "enrolment"))


def _expected(request: SchoolRequest) -> str | None:
    """The value the cell showed before the edit, when the page sent it (it always does)."""
    return request.POST.get("expected")


def _cell_answer(save: Callable[[], CellSaved]) -> JsonResponse:
    """Run one cell save and answer as the grade book's script expects: the value, or why not.

    Every refusal is a 4xx with a message in `error` (the script shows it in the cell and does
    not send the value again); only a server that fails (5xx) or cannot be reached is retried.
    A cell changed meanwhile is a 409 with both values: the teacher chooses, nothing is written.
    """
    try:
        saved = save()
    except CellConflict as exc:
        return JsonResponse(
            {"conflict": True, "current": exc.current, "yours": exc.yours, "error": str(exc)}, status=409
        )
    except CellError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc) or _("You may not change this cell.")}, status=403)
    except _MalformedCell:
        return JsonResponse(
            {"error": _("This cell's student, term or period is malformed: reload the page.")}, status=400
        )
    except Http404:
        return JsonResponse(
            {"error": _("This cell's class, subject or student was not found: reload the page.")}, status=404
        )
    return JsonResponse(
        {"value": saved.value, "average": saved.average, "changed": saved.changed, "version": saved.version}
    )


@require_GET
def gradebook_index(request: SchoolRequest) -> HttpResponse:
    """The classes and subjects this user opens, in the current school year."""
    year = current_school_year(request)
    books = gradebook_index_books(user=request.user, school=request.school, school_year_id=year.pk)
    return render(
        request,
        "transcripts/index.html",
        {
            "school_year": year,
            "books": books,
            # Every class this user opens is approved: no term is "open for entry" for them.
            "all_closed": bool(books) and all(c.closed_at is not None for c, _s, _h in books),
            "terms": terms_of(school_year_id=year.pk),
            "can_lock": can_lock_terms(request.user, request.school),
        },
    )


@require_GET
def gradebook(request: SchoolRequest, class_id: int, subject_code: str) -> HttpResponse:
    """One class in one subject: every student on one screen, each cell saving on its own."""
    school_class, entry, teacher_id = class_and_entry_for(
        request, class_id, subject_code, capability=Capability.VIEW
    )
    primary = school_class.ruleset == Ruleset.TT27
    term = 2 if request.GET.get("hk") == "2" else 1
    period = request.GET.get("ky", PrimaryPeriod.END1)
    if period not in PrimaryPeriod.values:
        period = PrimaryPeriod.END1
    book = gradebook_for(school_class=school_class, entry=entry, term=term, period=period)
    term_one = (PrimaryPeriod.MID1, PrimaryPeriod.END1)  # a primary period's term
    term_number = (1 if period in term_one else 2) if primary else term
    locked = term_is_locked(school_year_id=school_class.school_year_id, number=term_number)
    # An approved year closes the whole book (the services refuse any write): show it closed,
    # rather than cells that look editable and refuse only after typing.
    closed = school_class.closed_at is not None
    editable = (
        can_edit_subject(request.user, request.school, school_class, teacher_id) and not locked and not closed
    )
    return render(
        request,
        "transcripts/gradebook.html",
        {
            "book": book,
            "school_class": school_class,
            "subject": entry.subject,
            "primary": primary,
            "periods": PrimaryPeriod.choices,
            "subject_kinds": SubjectKind,
            "editable": editable,
            "locked": locked,
            "closed": closed,
        },
    )


def _cell_from(request: SchoolRequest, subject_id: int) -> Cell:
    data = request.POST if request.method == "POST" else request.GET
    return Cell(
        enrolment_id=cast(int, _posted_number(request, "enrolment")),
        subject_id=subject_id,
        field=data.get("field", ""),
        term=_posted_number(request, "term", required=False),
        period=data.get("period") or None,
    )


@require_POST
def cell_save(request: SchoolRequest, class_id: int, subject_code: str) -> JsonResponse:
    """Save one cell; answer with the value as stored and the row's new average, or the error."""

    def save() -> CellSaved:
        # The service checks who may write this cell; here only the class and subject are looked up.
        school_class, entry, _teacher = class_and_entry_for(
            request, class_id, subject_code, capability=Capability.LOOKUP
        )
        return assessment_cell_save(
            actor=request.user,
            school=request.school,
            school_class=school_class,
            cell=_cell_from(request, entry.subject_id),
            raw=request.POST.get("value", ""),
            expected=_expected(request),
        )

    return _cell_answer(save)


@require_GET
def cell_history_view(request: SchoolRequest, class_id: int, subject_code: str) -> HttpResponse:
    """Who changed a cell, when, from what to what."""
    school_class, entry, _teacher = class_and_entry_for(
        request, class_id, subject_code, capability=Capability.VIEW
    )
    try:
        cell = _cell_from(request, entry.subject_id)
    except _MalformedCell:
        raise Http404 from None
    changes = cell_changes(school_class=school_class, entry=entry, cell=cell)
    return render(request, "transcripts/_cell_history.html", {"changes": changes})


@require_GET
def homeroom(request: SchoolRequest, class_id: int) -> HttpResponse:
    """The homeroom view of a class: conduct, absences, qualities, and every student's year result."""
    school_class = class_for(request, class_id, capability=Capability.VIEW)
    primary = school_class.ruleset == Ruleset.TT27
    period = PrimaryPeriod.END1 if request.GET.get("ky") == PrimaryPeriod.END1 else PrimaryPeriod.END2
    outcomes = class_results(school_class)
    quality_levels = quality_levels_for([o.enrolment for o in outcomes], period) if primary else {}
    rows = [
        {
            "outcome": o,
            "qualities": [
                (code, quality_levels.get((o.enrolment.pk, code), ""))
                for code in QUALITY_CODES + COMPETENCY_CODES
            ],
        }
        for o in outcomes
    ]
    return render(
        request,
        "transcripts/homeroom.html",
        {
            "school_class": school_class,
            "primary": primary,
            "period": period,
            "primary_periods": PrimaryPeriod,
            "rows": rows,
            "quality_headers": QUALITY_HEADERS,
            "editable": can_edit_homeroom(request.user, request.school, school_class)
            and school_class.closed_at is None,
            "complete": sum(1 for o in outcomes if o.result is not None),
            "can_approve": can_lock_terms(request.user, request.school),
            "summer": summer_rows(school_class) if school_class.closed_at and not primary else [],
            "summer_editable": can_edit_homeroom(request.user, request.school, school_class)
            and school_class.summer_closed_at is None,
        },
    )


@require_POST
def homeroom_cell_save(request: SchoolRequest, class_id: int) -> JsonResponse:
    """Save one of the homeroom teacher's cells (conduct, absences, comments, qualities)."""
    return _cell_answer(
        lambda: assessment_cell_save(
            actor=request.user,
            school=request.school,
            school_class=class_for(request, class_id, capability=Capability.LOOKUP),
            cell=Cell(
                enrolment_id=_enrolment_id(request),
                field=request.POST.get("field", ""),
                period=request.POST.get("period") or None,
            ),
            raw=request.POST.get("value", ""),
            expected=_expected(request),
        )
    )


@require_POST
def results_compute(request: SchoolRequest, class_id: int) -> HttpResponse:
    """Compute and store the class's year results under its rule set (the homeroom teacher's step)."""
    school_class = class_for(request, class_id, capability=Capability.VIEW)
    back = school_redirect(request, "transcripts:homeroom", class_id=school_class.pk)
    try:
        stored = class_results_compute(actor=request.user, school=request.school, school_class=school_class)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return back
    messages.success(request, _("Results computed for %(count)d students.") % {"count": stored})
    return back


@require_POST
def term_lock(request: SchoolRequest, term_id: int) -> HttpResponse:
    """Lock a term (no more changes) or unlock it: the principal's or a vice-principal's decision."""
    term = term_for(request, term_id)
    term_lock_set(
        actor=request.user, school=request.school, term=term, locked=request.POST.get("locked") == "1"
    )
    return school_redirect(request, "transcripts:index")


def _class_step(
    request: SchoolRequest,
    class_id: int,
    step: Callable[..., int],  # keyword-only: actor, school, school_class; returns the count
    success: Callable[[SchoolClass, int], str],
) -> HttpResponse:
    """Run one of the principal's steps on a class, say how it went, and go back to the class."""
    school_class = class_for(request, class_id, capability=Capability.VIEW)
    try:
        count = step(actor=request.user, school=request.school, school_class=school_class)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, success(school_class, count))
    return school_redirect(request, "transcripts:homeroom", class_id=school_class.pk)


@require_POST
def year_close(request: SchoolRequest, class_id: int) -> HttpResponse:
    """The principal approves the class's year: results stored, the book closed."""
    return _class_step(
        request,
        class_id,
        class_year_close,
        lambda school_class, count: (
            _("The year of class %(name)s is approved (%(count)d students).")
            % {"name": school_class.name, "count": count}
        ),
    )


@require_POST
def summer_cell(request: SchoolRequest, class_id: int) -> JsonResponse:
    """An August cell: a subject's re-assessment result, or the conduct after re-training."""
    return _cell_answer(
        lambda: summer_cell_save(
            actor=request.user,
            school=request.school,
            school_class=class_for(request, class_id, capability=Capability.LOOKUP),
            enrolment_id=_enrolment_id(request),
            field=request.POST.get("field", ""),
            raw=request.POST.get("value", ""),
            expected=_expected(request),
        )
    )


@require_POST
def summer_close(request: SchoolRequest, class_id: int) -> HttpResponse:
    """August: the principal closes the re-assessment; the rules decide who is promoted."""
    return _class_step(
        request,
        class_id,
        class_summer_close,
        lambda school_class, count: _("Re-assessment closed for %(count)d students.") % {"count": count},
    )
