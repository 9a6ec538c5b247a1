"""Signing pages: a signer's certificates, the school seal, and batches (start, confirm, progress).

Thin views (style.md): look up within scope (another school's or another signer's batch answers
404), call one service of signing.services, say how it went. The school pages sit behind
portal.middleware (login, school scope, two-factor); the certificates page is the user's own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from portal.http import AuthenticatedRequest, SchoolRequest
from schools.models import SchoolClass
from transcripts.models import YearRecord
from transcripts.records.services import SIGNING_STEPS

from . import services
from .backends.pkcs12 import MAX_PKCS12_BYTES
from .models import BatchState, CertificateBackend, ItemState, SigningBatch, SigningCertificate, SigningStep
from .selectors import signing_certificates_for, signing_offers

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


def _posted_id(request, name: str) -> int:
    """A primary key from the form; anything but a number finds nothing (a tampered form: 404)."""
    value = request.POST.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else 0


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
                    pk=_posted_id(request, "certificate"), user=user, removed_at=None
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
    certificates = SigningCertificate.objects.filter(user=user, removed_at=None)
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
        {"certificates": certificates, "upload": upload, "remote": remote, "remote_error": remote_error},
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
                    return redirect(_school_url(request, "signing:seal"))
            elif action == "pkcs11":
                token = TokenForm(request.POST)
                if token.is_valid():
                    services.certificate_register_pkcs11(
                        actor=request.user, school=school, **token.cleaned_data
                    )
                    messages.success(request, _("The seal's certificate is registered."))
                    return redirect(_school_url(request, "signing:seal"))
            elif action == "remove":
                certificate = SigningCertificate.objects.filter(
                    pk=_posted_id(request, "certificate"), school=school, removed_at=None
                ).first()
                if certificate is None:
                    raise Http404
                services.certificate_remove(actor=request.user, certificate=certificate)
                messages.success(request, _("The certificate is no longer used."))
                return redirect(_school_url(request, "signing:seal"))
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


def _school_url(request: SchoolRequest, name: str, **kwargs) -> str:
    return reverse(name, kwargs={"school_code": request.school.code, **kwargs})


def _back_url(request: SchoolRequest) -> str:
    """Where the form came from (the class's records page), if it is a page of this school on this
    site; the school's signing page otherwise. A `back` pointing elsewhere (https://evil.example,
    //evil.example, /\\evil.example, javascript:...) is ignored: no open redirect."""
    back = request.POST.get("back", "")
    school_prefix = _school_url(request, "schools:home")
    if (
        back.startswith(school_prefix)
        and not any(c in back for c in "\\\r\n\t ")
        and "/../" not in back
        and url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and not urlsplit(back).netloc
        and not urlsplit(back).scheme
    ):
        return back
    return _school_url(request, "signing:batches")


def _batch_or_404(request: SchoolRequest, batch_pk: int) -> SigningBatch:
    """A batch of this school started by this user; anything else does not exist for them."""
    batch = (
        SigningBatch.objects.filter(pk=batch_pk, school=request.school, signer=request.user)
        .select_related("certificate")
        .first()
    )
    if batch is None:
        raise Http404
    return batch


@require_GET
def batches(request: SchoolRequest) -> HttpResponse:
    """What waits for the user's signature in this school, and the user's batches."""
    school = request.school
    waiting = dict(
        YearRecord.objects.filter(status__in=[s[1] for s in SIGNING_STEPS.values()])
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    steps = signing_offers(
        user=request.user, school=school, school_class=None, status_counts=waiting, include_empty=True
    )
    mine = (
        SigningBatch.objects.filter(school=school, signer=request.user)
        .annotate(
            total=Count("items"),
            done=Count("items", filter=Q(items__state=ItemState.DONE)),
            failed=Count("items", filter=Q(items__state=ItemState.FAILED)),
        )
        .order_by("-created_at")[:20]
    )
    return render(request, "signing/batches.html", {"steps": steps, "batches": mine})


@require_POST
def batch_start(request: SchoolRequest) -> HttpResponse:
    """Start a batch over a class (class_id) or the whole school, at one step, with a certificate."""
    step = request.POST.get("step", "")
    school_class = None
    if request.POST.get("class_id"):
        school_class = SchoolClass.objects.filter(pk=_posted_id(request, "class_id")).first()
        if school_class is None:
            raise Http404
    certificate = (
        signing_certificates_for(user=request.user, school=request.school, step=step)
        .filter(pk=_posted_id(request, "certificate"))
        .first()
    )
    back = _back_url(request)
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
    return redirect(_school_url(request, "signing:batch", batch_pk=batch.pk))


def _progress(batch: SigningBatch) -> dict:
    counts = batch.items.aggregate(
        total=Count("pk"),
        done=Count("pk", filter=Q(state=ItemState.DONE)),
        failed=Count("pk", filter=Q(state=ItemState.FAILED)),
    )
    counts["remaining"] = counts["total"] - counts["done"] - counts["failed"]
    failures = [
        {"student": i.student_name, "record_id": i.record_id, "version": i.version, "reason": i.reason}
        for i in batch.items.filter(state=ItemState.FAILED).order_by("position")
    ]
    paused = batch.state == BatchState.QUEUED and batch.next_attempt_at is not None
    state_label = str(batch.get_state_display())
    if paused:
        assert batch.next_attempt_at is not None
        # The signing service is down: the batch waits and tries again by itself (runner._pause).
        state_label = _("Paused, retrying at %(time)s") % {
            "time": timezone.localtime(batch.next_attempt_at).strftime("%H:%M:%S")
        }
    return {
        "state": batch.state,
        "state_label": state_label,
        "paused": paused,
        "next_attempt_at": batch.next_attempt_at.isoformat() if paused and batch.next_attempt_at else None,
        "retry_reason": batch.retry_reason if paused else "",
        "finished": batch.state in (BatchState.DONE, BatchState.CANCELLED),
        **counts,
        "failures": failures,
    }


def batch_detail(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    """The confirmation form while the batch waits for it; then its live progress."""
    batch = _batch_or_404(request, batch_pk)
    return render(
        request,
        "signing/batch.html",
        {
            "batch": batch,
            "progress": _progress(batch),
            "needs_totp": batch.step == SigningStep.PRINCIPAL,
            "uses_otp": batch.certificate.backend == CertificateBackend.CSC,
            "items": batch.items.order_by("position"),
        },
    )


@require_GET
def batch_progress(request: SchoolRequest, batch_pk: int) -> JsonResponse:
    batch = _batch_or_404(request, batch_pk)
    response = JsonResponse(_progress(batch))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def batch_confirm(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = _batch_or_404(request, batch_pk)
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
    return redirect(_school_url(request, "signing:batch", batch_pk=batch.pk))


@require_POST
def batch_otp(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = _batch_or_404(request, batch_pk)
    try:
        services.signing_batch_otp_resend(actor=request.user, batch=batch)
        messages.success(request, _("A new code has been sent."))
    except ValidationError as error:
        _say(request, error)
    return redirect(_school_url(request, "signing:batch", batch_pk=batch.pk))


@require_POST
def batch_cancel(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = _batch_or_404(request, batch_pk)
    services.signing_batch_cancel(actor=request.user, school=request.school, batch=batch)
    messages.success(request, _("The batch is cancelled; records already signed stay signed."))
    return redirect(_school_url(request, "signing:batch", batch_pk=batch.pk))


@require_POST
def batch_retry(request: SchoolRequest, batch_pk: int) -> HttpResponse:
    batch = _batch_or_404(request, batch_pk)
    try:
        retry = services.signing_batch_retry(actor=request.user, school=request.school, batch=batch)
    except ValidationError as error:
        _say(request, error)
        return redirect(_school_url(request, "signing:batch", batch_pk=batch.pk))
    return redirect(_school_url(request, "signing:batch", batch_pk=retry.pk))
