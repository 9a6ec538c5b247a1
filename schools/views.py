"""School pages. portal.middleware has already checked that the user may open this school."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from portal.choices import Role
from portal.permissions import access_for, can_manage_teachers
from portal.selectors import school_memberships_ending, school_staff, school_teachers_current

from . import hooks
from .imports import can_import_school_data
from .selectors import school_year_current, teachers_classes_current
from .services import teacher_classes_hand_over

if TYPE_CHECKING:
    from portal.http import SchoolRequest


# What each role does in a school, as the school home tells it (domain.md §2).
ROLE_DUTIES = {
    Role.SCHOOL_ADMIN: [
        _("Manage students, classes and teaching assignments"),
        _("Grant teacher roles in this school"),
        _("Seal issued transcripts with the school's certificate"),
    ],
    Role.PRINCIPAL: [
        _("Approve year results and corrections"),
        _("Sign the school's transcripts"),
        _("Grant teacher roles in this school"),
    ],
    Role.VICE_PRINCIPAL: [
        _("Sign transcripts on the principal's behalf (KT. Hiệu trưởng)"),
    ],
    Role.HOMEROOM_TEACHER: [
        _("Consolidate your class, assess conduct and write comments"),
        _("Sign your class's year records"),
    ],
    Role.SUBJECT_TEACHER: [
        _("Enter scores, levels and comments for your classes and subjects"),
    ],
}


def home(request: SchoolRequest) -> HttpResponse:
    """The school's front page: the school, the current year, and what this user does here."""
    school = request.school
    access = access_for(request.user)
    roles = [r for r in Role if r in access.roles_in_school(school.pk)]
    duties = [duty for role in roles for duty in ROLE_DUTIES.get(role, [])]
    shows_staff = bool(set(roles) & {Role.SCHOOL_ADMIN, Role.PRINCIPAL, Role.VICE_PRINCIPAL})
    return render(
        request,
        "schools/home.html",
        {
            "school": school,
            "school_year": school_year_current(),
            "roles": [r.label for r in roles],
            "duties": duties,
            "supervising": not roles,
            "staff": school_staff(school) if shows_staff else None,
            "can_import": can_import_school_data(request.user, school),
            "can_hand_over": can_manage_teachers(request.user, school),
            "can_sign": bool(
                set(roles) & {Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN, Role.HOMEROOM_TEACHER}
            ),
            "panels": hooks.home_panels(request),
        },
    )


# Teachers whose membership ended this long ago still show, even with no class left to hand over.
RECENTLY_ENDED_DAYS = 30


def _posted_pk(request: SchoolRequest, name: str) -> int:
    value = request.POST.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else 0


def hand_over(request: SchoolRequest) -> HttpResponse:
    """Teachers whose membership here ended, or ends within 30 days, with their classes of the
    current year, and the form that hands all of them to another teacher of the school (the
    school administrator, the principal)."""
    school = request.school
    if not can_manage_teachers(request.user, school):
        raise PermissionDenied(gettext("Only the school administrator or the principal hands classes over."))
    today = timezone.localdate()
    ending = school_memberships_ending(school=school, today=today)
    classes = teachers_classes_current(teacher_ids=[e["user"].pk for e in ending])
    rows: list[dict[str, Any]] = [
        {**e, "classes": classes[e["user"].pk]}
        for e in ending
        if not e["ended"]
        or classes[e["user"].pk]
        or e["until"] >= today - dt.timedelta(days=RECENTLY_ENDED_DAYS)
    ]
    teachers = school_teachers_current(school)
    if request.method == "POST":
        # Only the teachers listed here, to a current teacher of this school: any other id
        # (another school's teacher, a tampered form) finds nothing.
        leaving = next((r["user"] for r in rows if r["user"].pk == _posted_pk(request, "from_teacher")), None)
        taking = next((t for t in teachers if t.pk == _posted_pk(request, "to_teacher")), None)
        if leaving is None or taking is None:
            raise Http404
        try:
            moved = teacher_classes_hand_over(
                actor=request.user, school=school, from_teacher=leaving, to_teacher=taking
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)d class or subject of %(from)s handed over to %(to)s.",
                    "%(count)d classes or subjects of %(from)s handed over to %(to)s.",
                    moved.count,
                )
                % {"count": moved.count, "from": leaving.get_full_name(), "to": taking.get_full_name()},
            )
        return redirect("schools:hand_over", school_code=school.code)
    return render(
        request,
        "schools/hand_over.html",
        {"school": school, "rows": rows, "teachers": teachers, "today": today},
    )
