"""The public verification pages (no login): /tra-cuu/ and /tra-cuu/<record id>/v<version>/.

Included by portal/urls.py under "tra-cuu/", so the names are registry:verify and
registry:verify_record; the latter, with ?code=<verification code>, is the URL printed as the PDF's QR
code (IssuedRecord.get_absolute_url). Without the code, a record id only gets the form asking for
it; with a wrong one, the same answer as an id that does not exist (registry.verification).
"""

from __future__ import annotations

from typing import cast

from django import forms
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from portal.choices import VerificationMethod, VerificationOutcome

from .verification import (
    Verification,
    VerifyUploadLimit,
    code_required,
    max_upload_bytes,
    rate_limit_exceeded,
    rate_limited,
    too_large,
    verification_log,
    verify_by_id,
    verify_upload,
    wrong_code_count,
    wrong_codes,
    wrong_codes_exceeded,
)

STATUS_CODES: dict[str, int] = {
    VerificationOutcome.FOUND: 200,
    VerificationOutcome.NOT_FOUND: 404,
    VerificationOutcome.REFUSED: 400,
}
# Refusals with a status of their own: asking for the code is a page, not an error.
REASON_STATUS_CODES: dict[str, int] = {"rate_limited": 429, "wrong_codes": 429, "code_required": 200}


class LookupForm(forms.Form):
    record_id = forms.CharField(label=gettext_lazy("Record id"), max_length=64, required=False)
    version = forms.IntegerField(
        label=gettext_lazy("Version"), min_value=1, max_value=2**31 - 1, required=False
    )
    code = forms.CharField(
        label=gettext_lazy("Verification code"),
        max_length=64,
        required=False,
        help_text=gettext_lazy("Printed on the transcript under its QR code, like K7QX-9M2P-4DHT-W8RC."),
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
    status = REASON_STATUS_CODES.get(result.reason, STATUS_CODES[result.outcome])
    return render(request, "portal/verify.html", {"result": result, **context}, status=status)


def _lookup(
    request: HttpRequest, *, method: str, record_id: str, version: int, code: str, lookup
) -> HttpResponse:
    """A lookup by id: the code asked for, checked, and counted per address when it finds nothing.

    The id is looked up only with a code, and whether it exists changes neither the page nor the
    status: a guesser learns nothing from an id alone.
    """
    address = _address(request)
    if rate_limit_exceeded(address):
        return _answer(request, rate_limited(method), **_forms(lookup=lookup))
    if not code.strip():
        return _answer(request, code_required(method, record_id, version), **_forms(lookup=lookup))
    if wrong_codes_exceeded(address):
        return _answer(request, wrong_codes(method), **_forms(lookup=lookup))
    result = verify_by_id(method=method, record_id=record_id, version=version, code=code)
    if not result.found:
        wrong_code_count(address)
    return _answer(request, result, **_forms(lookup=lookup))


def _forms(lookup=None, upload=None) -> dict:
    return {
        "lookup": lookup or LookupForm(),
        "upload": upload or UploadForm(),
        "max_mb": max_upload_bytes() // (1024 * 1024),
    }


@never_cache  # a record's page holds a student's name and scores: no shared or history caches
@csrf_exempt
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The form: type a record id, version and verification code (GET), or upload a file (POST)."""
    if request.method == "POST":
        # Before the body is parsed (CSRF reads it), so that a large file is never stored.
        limit = VerifyUploadLimit(request)
        handlers = cast("list[FileUploadHandler]", request.upload_handlers)  # a list until parsed
        handlers.insert(0, limit)
        return _verify_upload(request, limit)
    if not {"record_id", "version", "code"} & set(request.GET):
        return render(request, "portal/verify.html", _forms())
    form = LookupForm(request.GET)
    if not form.is_valid() or not form.cleaned_data["record_id"] or not form.cleaned_data["version"]:
        return render(
            request,
            "portal/verify.html",
            {
                **_forms(lookup=form),
                "form_error": _("Type the record id, the version number and the verification code."),
            },
            status=400,
        )
    return _lookup(
        request,
        method=VerificationMethod.RECORD_ID,
        record_id=form.cleaned_data["record_id"],
        version=form.cleaned_data["version"],
        code=form.cleaned_data["code"],
        lookup=form,
    )


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


@never_cache
@require_GET
def verify_record(request: HttpRequest, record_id: str, version: int) -> HttpResponse:
    """The page the QR code opens (?code=...): one record's status and content, with the right code.

    Without a code (an old link, a guessed id) it is the form, the id and version filled in, asking
    for the code printed on the transcript.
    """
    code = request.GET.get("code", "")[:64]
    lookup = LookupForm(initial={"record_id": record_id[:64], "version": version})
    return _lookup(
        request, method=VerificationMethod.QR, record_id=record_id, version=version, code=code, lookup=lookup
    )
