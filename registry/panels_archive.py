"""What registry adds to a school's front page (schools.hooks) for its archive of issued records."""

from __future__ import annotations

from django.http import HttpRequest

from portal.models import IssuedRecord
from schools.hooks import Panel

from .archive_jobs import can_download_school_archive


def school_home_archive(request: HttpRequest) -> Panel | None:
    """A link to the school's archive page, for its leaders, once it has issued something."""
    school = getattr(request, "school", None)
    if school is None or not request.user.is_authenticated:
        return None
    if not can_download_school_archive(request.user, school):  # type: ignore[arg-type]
        return None
    if not IssuedRecord.objects.filter(school=school).exists():
        return None
    return Panel("registry/archive_school_panel.html", {})
