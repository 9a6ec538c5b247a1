"""Public pages: where a user works, the department and division overviews."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import render

from .http import AuthenticatedRequest
from .models import Department, Division, School
from .permissions import access_for, can_open_school_data, can_use_admin
from .selectors import divisions_for, schools_for, workplaces_for


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    """The landing page after login: every place the user holds a role, one click away."""
    return render(
        request,
        "portal/home.html",
        {
            "workplaces": workplaces_for(request.user),
            "department": Department.objects.first(),
            "can_use_admin": can_use_admin(request.user),
        },
    )


@login_required
def department_overview(request: AuthenticatedRequest) -> HttpResponse:
    """The province at a glance, for department staff: divisions and the schools under each."""
    if not access_for(request.user).is_department_staff:
        raise Http404
    divisions = Division.objects.annotate(
        school_count=Count("schools", filter=Q(schools__active=True))
    ).order_by("name")
    direct = schools_for(request.user).filter(division__isnull=True).order_by("name")
    return render(
        request,
        "portal/department.html",
        {
            "department": Department.objects.first(),
            "divisions": divisions,
            "direct_schools": _with_data_access(request, direct),
        },
    )


@login_required
def division_detail(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """A division and its schools, for its officers and department staff."""
    division = divisions_for(request.user).filter(code__iexact=code).first()
    if division is None:
        raise Http404
    schools = schools_for(request.user).filter(division=division).order_by("name")
    return render(
        request,
        "portal/division.html",
        {"division": division, "schools": _with_data_access(request, schools)},
    )


def _with_data_access(request: AuthenticatedRequest, schools: QuerySet[School]) -> list[tuple[School, bool]]:
    return [(school, can_open_school_data(request.user, school)) for school in schools]
