"""Reads of a school's own schema."""

from __future__ import annotations

from .models import SchoolYear


def school_year_current() -> SchoolYear | None:
    return SchoolYear.objects.filter(is_current=True).first()
