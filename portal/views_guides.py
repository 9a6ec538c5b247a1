"""The first-time guides' two buttons, and the public page "What is a digital signature?".

The buttons are plain forms (no script needed): they post here with the page they came from in
`next`, and come back to it, at the guide's place. They act on the logged-in user only.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .guides import guide_get
from .http import AuthenticatedRequest
from .services_guides import guide_dismiss, guide_reopen


def _back(request: HttpRequest, code: str) -> HttpResponseRedirect:
    """Back to the page the button was on (only a page of this site), at the guide's place."""
    target = request.POST.get("next", "").split("#", 1)[0]
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    return HttpResponseRedirect(f"{target}#guide-{code}")


@require_POST
@login_required
def dismiss(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """ "Got it, hide this guide": the user will not see guide `code` again until they reopen it."""
    if guide_get(code) is None:
        raise Http404("No such guide")
    guide_dismiss(user=request.user, code=code)
    return _back(request, code)


@require_POST
@login_required
def reopen(request: AuthenticatedRequest, code: str) -> HttpResponse:
    """The small "Guide" button: show guide `code` again."""
    if guide_get(code) is None:
        raise Http404("No such guide")
    guide_reopen(user=request.user, code=code)
    return _back(request, code)


@require_GET
def signatures(request: HttpRequest) -> HttpResponse:
    """What a digital signature is, in plain words, for parents and first-time signers (public)."""
    return render(request, "portal/signatures.html")
