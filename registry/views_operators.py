"""The Department's page on forwarding to the Ministry: /so/kho-hoc-ba/ (config/urls.py).

Department staff read it; the Department's administrators replay dead letters (one, or all).
Anyone else: 404. Thin views (style.md): a selector to read, a service to write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from portal.permissions import access_for, can_administer_province

from . import ministry
from .choices import OutboxState
from .models import OutboxMessage
from .selectors import province_forwarding
from .services import outbox_replay, outbox_replay_all

if TYPE_CHECKING:
    from portal.http import AuthenticatedRequest


def _staff_only(request: AuthenticatedRequest) -> None:
    if not access_for(request.user).is_department_staff:
        raise Http404


@login_required
@require_GET
def forwarding(request: AuthenticatedRequest) -> HttpResponse:
    """The queue by state and by school, throughput, delay, errors, dead letters, the share."""
    _staff_only(request)
    now = timezone.now()
    overview = province_forwarding(now=now)
    return render(
        request,
        "registry/forwarding.html",
        {
            "overview": overview,
            "now": now,
            "states": OutboxState,
            "state_rows": [(s, overview.by_state.get(s.value, 0)) for s in OutboxState],
            "configured": ministry.configured(),
            "can_replay": can_administer_province(request.user),
        },
    )


@login_required
@require_POST
def forwarding_replay(request: AuthenticatedRequest, message_pk: int) -> HttpResponse:
    _staff_only(request)
    message = OutboxMessage.objects.filter(pk=message_pk).first()
    if message is None:
        raise Http404
    try:
        outbox_replay(actor=request.user, message=message)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("%(record)s v%(version)d will be sent again.")
            % {"record": message.record_id, "version": message.version},
        )
    return redirect("registry_operators:forwarding")


@login_required
@require_POST
def forwarding_replay_all(request: AuthenticatedRequest) -> HttpResponse:
    _staff_only(request)
    count = outbox_replay_all(actor=request.user)
    messages.success(request, _("%(count)d stopped messages will be sent again.") % {"count": count})
    return redirect("registry_operators:forwarding")
