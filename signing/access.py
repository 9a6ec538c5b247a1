"""What a signing page may touch, looked up within its scope (the family of transcripts.access).

Another school's or another signer's batch, a class of another school, a tampered id: 404. Whether
the user may sign a step on a class is the service's question (signing.services, asked again
before each signature), not the page's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from schools.models import SchoolClass

from .models import SigningBatch

if TYPE_CHECKING:
    from portal.http import SchoolRequest


def posted_id(request: HttpRequest, name: str) -> int:
    """A primary key from the form; anything but a number finds nothing (a tampered form: 404)."""
    value = request.POST.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else 0


def batch_for(request: SchoolRequest, batch_pk: int) -> SigningBatch:
    """A batch of this school started by this user; anything else does not exist for them."""
    batch = (
        SigningBatch.objects.filter(pk=batch_pk, school=request.school, signer=request.user)
        .select_related("certificate")
        .first()
    )
    if batch is None:
        raise Http404
    return batch


def posted_class_for(request: SchoolRequest) -> SchoolClass | None:
    """The class named by the form's `class_id` (the request's schema is its school), None when
    the form names none (the whole school); 404 for an id that is no class here."""
    if not request.POST.get("class_id"):
        return None
    school_class = SchoolClass.objects.filter(pk=posted_id(request, "class_id")).first()
    if school_class is None:
        raise Http404
    return school_class


def back_url(request: SchoolRequest) -> str:
    """Where the form came from (the class's records page), if it is a page of this school on this
    site; the school's signing page otherwise. A `back` pointing elsewhere (https://evil.example,
    //evil.example, /\\evil.example, javascript:...) is ignored: no open redirect."""
    back = request.POST.get("back", "")
    school_prefix = reverse("schools:home", kwargs={"school_code": request.school.code})
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
    return reverse("signing:batches", kwargs={"school_code": request.school.code})
