"""Reads of a school's own schema."""

from __future__ import annotations

from collections.abc import Iterable

from .models import SchoolYear, Student


def school_year_current() -> SchoolYear | None:
    return SchoolYear.objects.filter(is_current=True).first()


def students_personal_ids(student_codes: Iterable[str]) -> dict[str, str]:
    """The verified personal ID number of each of these students that has one, by student code
    (one query; the connection is on the school's schema)."""
    rows = Student.objects.filter(student_code__in=list(student_codes), personal_id__isnull=False)
    return {code: number for code, number in rows.values_list("student_code", "personal_id") if number}
