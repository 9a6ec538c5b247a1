"""`{% guide "code" %}`: a first-time guide (portal.guides) where a step happens.

    {% load guides %}
    {% guide "open_gradebook" when=editable %}

Renders the guide for the current user unless they have dismissed it, and then only a small
"Guide" button that reopens it. `when` carries the page's own capability (the view already knows
who meets the step there); a false `when` renders nothing. Anonymous visitors get nothing and
cost nothing; a logged-in user costs one query per page, however many guides it shows (their
dismissals are read once and kept on the request). A guide is rendered at most once per page,
so a page that offers the same step twice shows its guide once.
"""

from __future__ import annotations

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from ..guides import guide_get
from ..services_guides import guides_dismissed

register = template.Library()

_DISMISSED = "_hocba_guides_dismissed"  # request attribute: the user's dismissed codes
_SHOWN = "_hocba_guides_shown"  # request attribute: the codes already rendered on this page


def _dismissed(request: HttpRequest) -> frozenset[str]:
    cached = getattr(request, _DISMISSED, None)
    if cached is None:
        cached = guides_dismissed(user=request.user)  # type: ignore[arg-type]  # authenticated: checked by the caller
        setattr(request, _DISMISSED, cached)
    return cached


@register.simple_tag(takes_context=True)
def guide(context: template.Context, code: str, when: object = True) -> SafeString:
    """The guide `code` (or its reopen button once dismissed); nothing if `when` is false."""
    found = guide_get(code)
    if found is None:
        # A template's typo, not a visitor's input: fail where the template is tested.
        raise template.TemplateSyntaxError(f"No guide is named {code!r} (portal.guides.GUIDES).")
    request: HttpRequest | None = context.get("request")
    user = getattr(request, "user", None)
    if not when or request is None or user is None or not user.is_authenticated:
        return SafeString("")
    shown: set[str] = getattr(request, _SHOWN, set())
    if code in shown:
        return SafeString("")
    shown.add(code)
    setattr(request, _SHOWN, shown)
    # A template's output is already safe (escaped as it rendered).
    return render_to_string(
        "portal/_guide.html",
        {
            "guide": found,
            "dismissed": code in _dismissed(request),
            "next": request.get_full_path(),
            # The page's token: the fragment's forms post with it (no second context run).
            "csrf_token": context.get("csrf_token"),
        },
    )


@register.filter
def enters_scores(books: object) -> bool:
    """Whether a grade-book index (transcripts' `books`: (class, [(entry, editable)], homeroom))
    has a subject the user enters: the index's own answer to "who opens a grade book to write"."""
    return any(editable for _class, subjects, _homeroom in books or () for _entry, editable in subjects)  # type: ignore[attr-defined]
