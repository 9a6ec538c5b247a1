"""What registry adds to a school's front page (schools.hooks): its messages to the Ministry."""

from __future__ import annotations

from django.http import HttpRequest

from portal.choices import Role
from portal.permissions import access_for
from schools.hooks import Panel

from .selectors import school_forwarding

# Who sees the panel: the school's leaders and its administrator (they mend what was rejected),
# and the Department's and division's staff let into the school (supervision).
SEES_FORWARDING = {Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN}


def school_home_forwarding(request: HttpRequest) -> Panel | None:
    school = getattr(request, "school", None)
    if school is None or not request.user.is_authenticated:
        return None
    roles = access_for(request.user).roles_in_school(school.pk)
    if roles and not roles & SEES_FORWARDING:
        return None  # a teacher: their class's page says what became of its records
    summary = school_forwarding(school)
    if not summary.total:
        return None
    return Panel("registry/school_forwarding.html", {"forwarding": summary})
