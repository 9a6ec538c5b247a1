"""Signing out clears what this browser kept of the portal (docs/offline.md).

The grade book keeps copies of its pages for a reload without network (a service worker's
CacheStorage) and a queue of unsent cells (IndexedDB). The pages show students' names, and a
school computer is often shared: signing out must leave none of it behind. Chromium clears
CacheStorage only for `"storage"` (`"cache"` is the HTTP cache alone: checked in Chromium 156);
`"storage"` also clears IndexedDB and unregisters the service worker, so cells still unsent when
the teacher signs out are lost on this device: the grade book warns before leaving with unsent
cells (beforeunload), and online they are sent within seconds of being typed.
"""

from __future__ import annotations

from allauth.account.views import LogoutView
from django.http import HttpResponse

CLEAR_SITE_DATA = '"cache", "storage"'


class SignOutView(LogoutView):
    def post(self, *args, **kwargs) -> HttpResponse:
        response = super().post(*args, **kwargs)
        response["Clear-Site-Data"] = CLEAR_SITE_DATA
        return response


sign_out = SignOutView.as_view()
