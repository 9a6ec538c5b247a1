"""What upper apps add to the public pages, so that portal never imports them (design.md §2).

The landing page (portal.views.home) lists a teacher's classes across all the schools where they
work. The classes live in each school's schema (schools.TeachingAssignment, SchoolClass), which
portal does not know: schools registers the function that reads them (schools.apps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .models import School, User

# (user, schools) -> one entry per class, each a dict the home page's template reads.
ClassesReader = Callable[[User, Sequence[School]], list[dict[str, Any]]]

_classes_readers: list[ClassesReader] = []


def classes_reader_register(function: ClassesReader) -> None:
    """Add a reader of a user's classes (once: registering the same function again is a no-op)."""
    if function not in _classes_readers:
        _classes_readers.append(function)


def classes_across_schools(user: User, schools: Sequence[School]) -> list[dict[str, Any]]:
    """The user's classes in these schools, as the registered readers find them."""
    if not schools:
        return []
    return [entry for read in _classes_readers for entry in read(user, schools)]
