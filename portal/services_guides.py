"""Dismissing and reopening the first-time guides (portal.guides), and reading who dismissed what.

Only portal uses these (its guide views and its `{% guide %}` tag), so they live in a module of
their own rather than in the shared face, portal.services. Every function acts on the user it is
given and only on that user's rows: the views pass request.user, never a user taken from the
request's data.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .guides import guide_get
from .models import GuideDismissal, User


def _known(code: str) -> str:
    if guide_get(code) is None:
        raise ValidationError(_("There is no such guide."), code="unknown_guide")
    return code


def guide_dismiss(*, user: User, code: str) -> GuideDismissal:
    """Hide guide `code` for `user` from now on. Dismissing twice (a double click) is harmless."""
    dismissal, _created = GuideDismissal.objects.get_or_create(user=user, code=_known(code))
    return dismissal


def guide_reopen(*, user: User, code: str) -> None:
    """Show guide `code` to `user` again (as the first time). Reopening a shown guide does nothing."""
    GuideDismissal.objects.filter(user=user, code=_known(code)).delete()


def guides_dismissed(*, user: User) -> frozenset[str]:
    """The codes of the guides `user` has dismissed (one query)."""
    return frozenset(GuideDismissal.objects.filter(user=user).values_list("code", flat=True))
