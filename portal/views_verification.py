"""The public verification pages (no login): /tra-cuu/ and /tra-cuu/<record id>/v<version>/.

Included by portal/urls.py under "tra-cuu/", so the names are portal:verify and
portal:verify_record; the latter is the URL printed as the PDF's QR code.
"""

from __future__ import annotations

from typing import cast

from django import forms
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from .models_verification import VerificationMethod, VerificationOutcome
from .verification import (
    Verification,
    VerifyUploadLimit,
    max_upload_bytes,
    rate_limit_exceeded,
    rate_limited,
    too_large,
    verification_log,
    verify_by_id,
    verify_upload,
)

STATUS_CODES: dict[str, int] = {
    VerificationOutcome.FOUND: 200,
    VerificationOutcome.NOT_FOUND: 404,
    VerificationOutcome.REFUSED: 400,
}


class LookupForm(forms.Form):
    record_id = forms.CharField(label=gettext_lazy("Record id"), max_length=64, required=False)
    version = forms.IntegerField(
        label=gettext_lazy("Version"), min_value=1, max_value=2**31 - 1, required=False
    )


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("XML or PDF file"))


def _address(request: HttpRequest) -> str:
    # REMOTE_ADDR: behind a reverse proxy, the proxy must set it from X-Forwarded-For itself.
    return request.META.get("REMOTE_ADDR", "")


def _answer(request: HttpRequest, result: Verification, **context) -> HttpResponse:
    verification_log(result, address=_address(request))
    if result.found:
        return render(
            request,
            "portal/verify_result.html",
            {"result": result, **context},
        )
    status = 429 if result.reason == "rate_limited" else STATUS_CODES[result.outcome]
    return render(request, "portal/verify.html", {"result": result, **context}, status=status)


def _forms(lookup=None, upload=None) -> dict:
    return {
        "lookup": lookup or LookupForm(),
        "upload": upload or UploadForm(),
        "max_mb": max_upload_bytes() // (1024 * 1024),
    }


@csrf_exempt
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The form: type a record id and version (GET), or upload a file (POST)."""
    if request.method == "POST":
        # Before the body is parsed (CSRF reads it), so that a large file is never stored.
        limit = VerifyUploadLimit(request)
        handlers = cast("list[FileUploadHandler]", request.upload_handlers)  # a list until parsed
        handlers.insert(0, limit)
        return _verify_upload(request, limit)
    if "record_id" not in request.GET and "version" not in request.GET:
        return render(request, "portal/verify.html", _forms())
    form = LookupForm(request.GET)
    if not form.is_valid() or not form.cleaned_data["record_id"] or not form.cleaned_data["version"]:
        return render(
            request,
            "portal/verify.html",
            {**_forms(lookup=form), "form_error": _("Type both the record id and the version number.")},
            status=400,
        )
    method = VerificationMethod.RECORD_ID
    if rate_limit_exceeded(_address(request)):
        return _answer(request, rate_limited(method), **_forms(lookup=form))
    result = verify_by_id(
        method=method, record_id=form.cleaned_data["record_id"], version=form.cleaned_data["version"]
    )
    return _answer(request, result, **_forms(lookup=form))


@csrf_protect
def _verify_upload(request: HttpRequest, limit: VerifyUploadLimit) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    method = VerificationMethod.UPLOAD_XML
    upload = request.FILES.get("file")
    # Django's upload handlers always set the size of the files they make.
    if limit.exceeded or (upload is not None and cast(int, upload.size) > max_upload_bytes()):
        return _answer(request, too_large(method), **_forms())
    if not form.is_valid() or upload is None:
        return render(
            request,
            "portal/verify.html",
            {**_forms(upload=form), "form_error": _("Choose an XML or PDF file to upload.")},
            status=400,
        )
    if rate_limit_exceeded(_address(request)):
        return _answer(request, rate_limited(method), **_forms())
    data = upload.read(max_upload_bytes() + 1)
    upload.close()
    if len(data) > max_upload_bytes():
        return _answer(request, too_large(method), **_forms())
    return _answer(request, verify_upload(data=data), **_forms())


@require_GET
def verify_record(request: HttpRequest, record_id: str, version: int) -> HttpResponse:
    """The page the QR code opens: one record's status and content."""
    method = VerificationMethod.QR
    if rate_limit_exceeded(_address(request)):
        return _answer(request, rate_limited(method), **_forms())
    return _answer(request, verify_by_id(method=method, record_id=record_id, version=version), **_forms())


urlpatterns = [
    path("", verify, name="verify"),
    path("<str:record_id>/v<int:version>/", verify_record, name="verify_record"),
]
