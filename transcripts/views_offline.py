"""The grade book's service worker (static/js/gradebook-sw.js), served under a school's grade-book
URLs so that its scope is /truong/<code>/so-diem/: the grade-book pages open again without
network, and the page's queue of unsent cells (gradebook.js) asks here who is signed in.

portal.middleware has already let the user into this school (login required, 404 elsewhere).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.templatetags.static import static
from django.views.decorators.http import require_safe

if TYPE_CHECKING:
    from portal.http import SchoolRequest

WORKER = "js/gradebook-sw.js"
ASSETS = ("js/gradebook.js", "js/portal.js", "css/portal.css")


@lru_cache(maxsize=1)
def _worker_source() -> str:
    path = finders.find(WORKER)
    if not isinstance(path, str):
        raise LookupError(WORKER)
    with open(path, encoding="utf-8") as source:
        return source.read()


def _worker() -> str:
    """The script, after the URLs of the assets it keeps (hashed names in production)."""
    source = _worker_source.__wrapped__() if settings.DEBUG else _worker_source()
    assets = json.dumps([static(a) for a in ASSETS])
    return f"self.HOCBA_ASSETS = {assets};\nself.HOCBA_STATIC = {json.dumps(settings.STATIC_URL)};\n{source}"


@require_safe
def service_worker(request: SchoolRequest) -> HttpResponse:
    """The worker's script; with HEAD, only who is signed in (X-Hocba-User), for the page's queue:
    the queue of one user is never sent under another's session (the page may be a kept copy)."""
    response = HttpResponse(_worker(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache, private"
    response["X-Hocba-User"] = str(request.user.pk)
    return response
