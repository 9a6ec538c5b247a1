"""What an upper app adds to a school's pages, so that schools never imports it (design.md §2).

The school's front page (schools.views.home) shows the panels registered here, in order: each a
function of the request returning None (nothing for this user) or a `Panel` (a template and its
context). Registry registers the school's messages to the Ministry (registry.apps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


_home_panels: list[Callable[[HttpRequest], Panel | None]] = []


def home_panel_register(function: Callable[[HttpRequest], Panel | None]) -> None:
    """Add a panel to the school's front page (once: registering the same function again is a no-op)."""
    if function not in _home_panels:
        _home_panels.append(function)


def home_panels(request: HttpRequest) -> list[Panel]:
    """The panels this user sees on this school's front page."""
    return [panel for panel in (function(request) for function in _home_panels) if panel is not None]
