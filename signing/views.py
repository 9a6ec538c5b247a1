"""Signing pages: a signer's certificates, the school seal, and batches (start, confirm, progress).

Thin views (style.md): look up within scope (another school's or another signer's batch answers
404), call one service of signing.services, say how it went. The school pages sit behind
portal.middleware (login, school scope, two-factor); the certificates page is the user's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from portal.permissions import SIGNING_ROLES
from portal.selectors import memberships_until

from . import services
from .access import back_url, batch_for, posted_class_for, posted_id
from .backends.pkcs12 import MAX_PKCS12_BYTES
from .models import CertificateBackend, SigningCertificate, SigningStep
from .selectors import (
    records_waiting_counts,
    signing_batch_progress,
    signing_batches_recent,
    signing_certificates_for,
    signing_offers,
)

if TYPE_CHECKING:
    from portal.http import AuthenticatedRequest, SchoolRequest


# --- Forms ---------------------------------------------------------------------------------------


class Pkcs12Form(forms.Form):
    file = forms.FileField(label=gettext_lazy("Key file (.p12 or .pfx)"))
    pin = forms.CharField(label=gettext_lazy("PIN"), widget=forms.PasswordInput, max_length=128)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_PKCS12_BYTES:
            raise ValidationError(_("The file is too large to be a key file."))
        return upload.read()


class TokenForm(forms.Form):
    token_label = forms.CharField(label=gettext_lazy("Token label"), max_length=64)
    key_label = forms.CharField(label=gettext_lazy("Key label on the token"), max_length=64, initial="seal")
    pin = forms.CharField(label=gettext_lazy("Token PIN"), widget=forms.PasswordInput, max_length=128)


def _say(request: HttpRequest, error: ValidationError) -> None:
    messages.error(request, " ".join(error.messages))


# --- The user's certificates (public pages) -------------------------------------------------------


@login_required
def my_certificates(request: AuthenticatedRequest) -> HttpResponse:
    """Register a key file, connect a remote-signing credential, remove a certificate."""
    user = request.user
    upload = Pkcs12Form()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "pkcs12":
                upload = Pkcs12Form(request.POST, request.FILES)
                if upload.is_valid():
                    services.certificate_register_pkcs12(
                        actor=user,
                        user=user,
                        data=upload.cleaned_data["file"],
                        pin=upload.cleaned_data["pin"],
                    )
                    messages.success(request, _("Your certificate is registered."))
                    return redirect("signing_account:certificates")
            elif action == "csc":
                services.certificate_register_csc(
                    actor=user, credential_id=request.POST.get("credential_id", "")
                )
                messages.success(request, _("Your remote signing credential is registered."))
                return redirect("signing_account:certificates")
            elif action == "remove":
                certificate = SigningCertificate.objects.filter(
                    pk=posted_id(request, "certificate"), user=user, removed_at=None
                ).first()
                if certificate is None:
                    raise Http404
                services.certificate_remove(actor=user, certificate=certificate)
                messages.success(request, _("The certificate is no longer used."))
                return redirect("signing_account:certificates")
        except ValidationError as error:
            _say(request, error)
        except PermissionDenied as error:
            messages.error(request, str(error))
    certificates = list(SigningCertificate.objects.filter(user=user, removed_at=None))
    # A visiting or contract teacher's certificates sign only while their role in a school lasts:
    # until the end of its last day there, or the certificate's own end if that comes first.
    ends = memberships_until(user=user, roles=SIGNING_ROLES)
    for certificate in certificates:
        expires = timezone.localdate(certificate.not_after)
        certificate.signs_until = [(school, min(until, expires)) for school, until in ends]  # type: ignore[attr-defined]
    registered = {c.csc_credential_id for c in certificates if c.csc_credential_id}
    remote, remote_error = [], ""
    if _csc_configured():
        try:
            remote = [
                {
                    "credential_id": c.credential_id,
                    "subject_name": services.certificate_subject_name(c.cert),
                    "serial": format(c.serial, "x"),
                    "not_after": c.not_after,
                }
                for c in services.csc_credentials(user=user)
                if c.credential_id not in registered
            ]
        except ValidationError as error:
            remote_error = " ".join(error.messages)
    return render(
        request,
        "signing/certificates.html",
        {
            "certificates": certificates,
            "signing_ends": ends,
            "upload": upload,
            "remote": remote,
            "remote_error": remote_error,
        },
    )


def _csc_configured() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "HOCBA_CSC_URL", ""))


# --- The school's seal -----------------------------------------------------------------------------


def seal_certificates(request: SchoolRequest) -> HttpResponse:
    """The school seal's certificate: a key file or a token (the school's administrator, principal)."""
    school = request.school
    if not services.can_manage_seal(request.user, school):
        raise PermissionDenied(_("Only the school's administrator or principal manages its seal."))
    upload, token = Pkcs12Form(), TokenForm()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "pkcs12":
                upload = Pkcs12Form(request.POST, request.FILES)
                if upload.is_valid():
                    services.certificate_register_pkcs12(
                        actor=request.user,
                        school=school,
                        data=upload.cleaned_data["file"],
                        pin=upload.cleaned_data["pin"],
                    )
                    messages.success(request, _("The seal's certificate is registered."))
                    return redirect("signing:seal", school_code=request.school.code)
            elif action == "pkcs11":
                token = TokenForm(request.POST)
                if token.is_valid():
                    services.certificate_register_pkcs11(
                        actor=request.user, school=school, **token.cleaned_data
                    )
                    messages.success(request, _("The seal's certificate is registered."))
                    return redirect("signing:seal", school_code=request.school.code)
            elif action == "remove":
                certificate = SigningCertificate.objects.filter(
                    pk=posted_id(request, "certificate"), school=school, removed_at=None
                ).first()
                if certificate is None:
                    raise Http404
                services.certificate_remove(actor=request.user, certificate=certificate)
                messages.success(request, _("The certificate is no longer used."))
                return redirect("signing:seal", school_code=request.school.code)
        except ValidationError as error:
            _say(request, error)
    return render(
        request,
        "signing/seal.html",
        {
            "certificates": SigningCertificate.objects.filter(school=school, removed_at=None),
            "upload": upload,
            "token": token,
        },
    )


# --- Batches ---------------------------------------------------------------------------------------


@require_GET
def batches(request: SchoolRequest) -> HttpResponse:
    """What waits for the user's signature in this school, and the user's batches."""
    school = request.school
    waiting = records_waiting_counts()
    steps = signing_offers(
        user=request.user, school=school, school_class=None, status_counts=waiting, include_empty=True
    )
    mine = signing_batches_recent(user=request.user, school=school)
    return render(request, "signing/batches.html", {"steps": steps, "batches": mine})


@require_POST
def batch_start(request: SchoolRequest) -> HttpResponse:
    """Start a batch over a class (class_id) or the whole school, at one step, with a certificate."""
    step = request.POST.get("step", "")
    school_class = posted_class_for(request)
    certificate = (
        signing_certificates_for(user=request.user, school=request.school, step=step)
        .filter(pk=posted_id(request, "certificate"))
        .first()
    )
    back = back_url(request)
    if certificate is None:
        messages.error(request, _("Choose a registered certificate to sign with."))
        return redirect(back)
    try:
        batch = services.signing_batch_start(
            actor=request.user,
            school=request.school,
            step=step,
            certificate=certificate,
            school_class=school_class,
        )
    except ValidationError as error:
        _say(request, error)
        return redirect(back)
    return redirect("signing:batch", school_code=request.school.code, batch_pk=batch.pk)


def batch_detail(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    """The confirmation form while the batch waits for it; then its live progress."""
    batch = batch_for(request, batch_pk)
    return render(
        request,
        "signing/batch.html",
        {
            "batch": batch,
            "progress": signing_batch_progress(batch),
            "needs_totp": batch.step == SigningStep.PRINCIPAL,
            "uses_otp": batch.certificate.backend == CertificateBackend.CSC,
            "items": batch.items.order_by("position"),
        },
    )


@require_GET
def batch_progress(request: SchoolRequest, batch_pk: int) -> JsonResponse:
    batch = batch_for(request, batch_pk)
    response = JsonResponse(signing_batch_progress(batch))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def batch_confirm(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = batch_for(request, batch_pk)
    try:
        services.signing_batch_confirm(
            actor=request.user,
            school=request.school,
            batch=batch,
            pin=request.POST.get("pin", ""),
            otp=request.POST.get("otp", ""),
            totp=request.POST.get("totp", ""),
        )
    except ValidationError as error:
        _say(request, error)
    return redirect("signing:batch", school_code=request.school.code, batch_pk=batch.pk)


@require_POST
def batch_otp(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = batch_for(request, batch_pk)
    try:
        services.signing_batch_otp_resend(actor=request.user, batch=batch)
        messages.success(request, _("A new code has been sent."))
    except ValidationError as error:
        _say(request, error)
    return redirect("signing:batch", school_code=request.school.code, batch_pk=batch.pk)


@require_POST
def batch_cancel(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = batch_for(request, batch_pk)
    services.signing_batch_cancel(actor=request.user, school=request.school, batch=batch)
    messages.success(request, _("The batch is cancelled; records already signed stay signed."))
    return redirect("signing:batch", school_code=request.school.code, batch_pk=batch.pk)


@require_POST
def batch_retry(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = batch_for(request, batch_pk)
    try:
        retry = services.signing_batch_retry(actor=request.user, school=request.school, batch=batch)
    except ValidationError as error:
        _say(request, error)
        return redirect("signing:batch", school_code=request.school.code, batch_pk=batch.pk)
    return redirect("signing:batch", school_code=request.school.code, batch_pk=retry.pk)
