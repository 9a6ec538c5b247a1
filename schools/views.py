"""School pages. portal.middleware has already checked that the user may open this school."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from portal.choices import Role
from portal.permissions import access_for
from portal.selectors import school_staff

from . import hooks
from .imports import can_import_school_data
from .selectors import school_year_current

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
            "can_sign": bool(
                set(roles) & {Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN, Role.HOMEROOM_TEACHER}
            ),
            "panels": hooks.home_panels(request),
        },
    )
