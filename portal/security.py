"""A generic defence against NUL bytes: refused at the door with a 400, in Vietnamese.

PostgreSQL refuses NUL (U+0000) in text, so a NUL that reaches a query is a 500 wherever it
comes from: a path segment, a query parameter, a form field, a cookie. No honest browser sends
one; instead of validating it in every view, this middleware refuses the request before any
view or query runs.

The path, the query string and the cookies are checked first (before the school is resolved
from the path). Form fields are checked in process_view, when the view is known: a view that is
exempt from CSRF may install its own upload handlers before the body is parsed (the public
verification page limits the size of an upload that way), so its body is left for it to parse;
for every other POST, CsrfViewMiddleware parses the body anyway, so parsing it here costs
nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

NUL = "\x00"

# Where the NUL was found, as the message names it.
_WHERE = {
    "path": gettext_lazy("the address"),
    "query": gettext_lazy("the query parameters"),
    "cookies": gettext_lazy("the cookies"),
    "form": gettext_lazy("the form fields"),
}


def _has_nul(values: Iterable[str]) -> bool:
    return any(NUL in value for value in values)


def _query_has_nul(query) -> bool:
    return _has_nul(query.keys()) or any(_has_nul(query.getlist(key)) for key in query)


def nul_refusal(request: HttpRequest, where: str) -> HttpResponse:
    """The 400 answer: JSON for the grade book's script (it asks for JSON), a page otherwise."""
    # Before LocaleMiddleware has run: the portal's default language (Vietnamese).
    with translation.override(settings.LANGUAGE_CODE):
        message = _(
            "The request was refused: a null character (NUL) was found in %(where)s. The portal does "
            "not accept it: type the value again instead of pasting it from another program."
        ) % {"where": _WHERE[where]}
        if request.path.startswith("/api/"):
            # The partner API's error shape (registry.api.errors): Vietnamese first, a code, English.
            with translation.override("en"):
                english = _(
                    "The request was refused: a null character (NUL) was found in %(where)s. The portal does "
                    "not accept it: type the value again instead of pasting it from another program."
                ) % {"where": _WHERE[where]}
            body = {"message": message, "code": "nul_character", "message_en": english}
            return JsonResponse(body, status=400)
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({"error": message}, status=400)
        return HttpResponseBadRequest(render_to_string("400.html", {"message": message}, request=request))


class RefuseNulMiddleware:
    """Answer 400 to a request whose path, query string, cookies or form fields contain NUL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path_info or NUL in request.path:
            return nul_refusal(request, "path")
        if _query_has_nul(request.GET):
            return nul_refusal(request, "query")
        if _has_nul(request.COOKIES.keys()) or _has_nul(request.COOKIES.values()):
            return nul_refusal(request, "cookies")
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.method != "POST" or getattr(view_func, "csrf_exempt", False):
            return None
        files = request.FILES
        names = (upload.name or "" for key in files for upload in files.getlist(key))
        if _query_has_nul(request.POST) or _has_nul(names):
            return nul_refusal(request, "form")
        return None
