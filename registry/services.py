"""Writes of the registry (style.md: services): the outbox to the Ministry, and the verification log.

- `outbox_issued` and `outbox_revoked` are called by transcripts (through transcripts.hooks,
  registered in registry.apps) inside the transaction that issues or revokes a version: the
  message is written with the change or not at all (design.md §5).
- `outbox_backfill`: the messages of versions issued before forwarding was switched on
  (the `forward_backfill` command).
- `outbox_replay` and `outbox_replay_all`: an operator sends dead letters again (same key, from
  the first attempt); audited. A rejected message is not replayed: the repository would answer
  the same key with the same verdict. What it refused is mended by a correction (a new version,
  a new message).
- The relay's own writes (claims, outcomes, verdicts) are in registry.forwarding.

The verification log is written by registry.verification.verification_log; the index rows by
transcripts through portal.services.
"""

from __future__ import annotations

from celery import current_app
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.choices import AuditAction
from portal.models import School, User
from portal.permissions import can_administer_province
from portal.services import audit_record
from transcripts.records.selectors import issued_versions

from .choices import REPLAYABLE_STATES, MessageKind, OutboxState
from .ministry import message_key
from .models import OutboxMessage
from .verification import verification_log

__all__ = [
    "outbox_backfill",
    "outbox_issued",
    "outbox_replay",
    "outbox_replay_all",
    "outbox_revoked",
    "relay_wake",
    "verification_log",
]

# One wake-up of the relay per this many seconds is enough: a run takes every due message.
WAKE_EVERY_SECONDS = 2


def relay_wake() -> None:
    """Queue a relay run (registry.tasks.forward_relay) after the current transaction commits,
    at most one every WAKE_EVERY_SECONDS: a batch of 800 seals queues one, not 800."""

    def wake() -> None:
        if cache.add("registry:relay-wake", 1, timeout=WAKE_EVERY_SECONDS):
            current_app.send_task("registry.tasks.forward_relay", headers={"_schema_name": "public"})

    transaction.on_commit(wake)


def outbox_issued(
    *,
    school: School,
    record_id: str,
    version: int,
    replaces_version: int | None,
    document: bytes,
    personal_id: str | None,
    student_code: str,
) -> OutboxMessage:
    """A version was issued: a `submit` (version 1) or a `replace` (a correction), due now, or
    waiting for the student's personal ID when the document has none."""
    kind = MessageKind.REPLACE if replaces_version is not None else MessageKind.SUBMIT
    message = OutboxMessage.objects.create(
        school=school,
        record_id=record_id,
        version=version,
        kind=kind,
        replaces_version=replaces_version,
        idempotency_key=message_key(kind=kind, record_id=record_id, version=version, document=document),
        document=document,
        student_code=student_code,
        personal_id=personal_id or None,
        state=OutboxState.PENDING if personal_id else OutboxState.WAITING_PERSONAL_ID,
        next_attempt_at=timezone.now(),
    )
    if personal_id:
        relay_wake()
    return message


def outbox_revoked(*, school: School, record_id: str, version: int, reason: str) -> OutboxMessage | None:
    """A version was revoked: a `cancel`, sent after the version's own message has its verdict.

    None when the Ministry never heard of the version (issued before forwarding began, or never
    issued). A version still waiting for its personal ID never left: its message and the cancel
    are both marked "not sent".
    """
    issued = (
        OutboxMessage.objects.select_for_update()
        .filter(record_id=record_id, version=version, kind__in=[MessageKind.SUBMIT, MessageKind.REPLACE])
        .first()
    )
    if issued is None:
        return None
    never_left = issued.state == OutboxState.WAITING_PERSONAL_ID
    if never_left:
        issued.state = OutboxState.VOID
        issued.save(update_fields=["state"])
    cancel = OutboxMessage.objects.create(
        school=school,
        record_id=record_id,
        version=version,
        kind=MessageKind.CANCEL,
        idempotency_key=message_key(
            kind=MessageKind.CANCEL, record_id=record_id, version=version, document=None
        ),
        student_code=issued.student_code,
        personal_id=issued.personal_id,
        reason=reason,
        state=OutboxState.VOID if never_left else OutboxState.PENDING,
        next_attempt_at=None if never_left else timezone.now(),
    )
    if not never_left:
        relay_wake()
    return cancel


def _check_operator(actor: User) -> None:
    if not can_administer_province(actor):
        raise PermissionDenied(_("Only the Department's administrators send messages to the Ministry again."))


def _replay(message: OutboxMessage, now) -> None:
    message.state = OutboxState.PENDING
    message.attempts = 0
    message.polls = 0
    message.next_attempt_at = now
    message.lease_owner, message.lease_until = "", None
    message.replayed_at = now
    message.save(
        update_fields=[
            "state",
            "attempts",
            "polls",
            "next_attempt_at",
            "lease_owner",
            "lease_until",
            "replayed_at",
        ]
    )


@transaction.atomic
def outbox_replay(*, actor: User, message: OutboxMessage) -> OutboxMessage:
    """Send one dead letter again, from its first attempt; same key."""
    _check_operator(actor)
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.state not in REPLAYABLE_STATES:
        raise ValidationError(
            _("Only a message stopped after repeated failures can be sent again; this one is “%(state)s”.")
            % {"state": message.get_state_display()}
        )
    old = message.state
    _replay(message, timezone.now())
    audit_record(
        actor=actor,
        action=AuditAction.MINISTRY_MESSAGE_REPLAYED,
        obj=message,
        summary=_("Message to the Ministry %(record)s v%(version)d sent again")
        % {"record": message.record_id, "version": message.version},
        changes={"state": [old, OutboxState.PENDING], "kind": message.kind},
        school=message.school,
    )
    relay_wake()
    return message


@transaction.atomic
def outbox_replay_all(*, actor: User, school: School | None = None) -> int:
    """Send every dead letter again, of one school or of all; one audit row for the lot. Returns
    how many."""
    _check_operator(actor)
    messages = OutboxMessage.objects.select_for_update(skip_locked=True).filter(state__in=REPLAYABLE_STATES)
    if school is not None:
        messages = messages.filter(school=school)
    now = timezone.now()
    count = 0
    for message in messages.order_by("pk"):
        _replay(message, now)
        count += 1
    if count:
        audit_record(
            actor=actor,
            action=AuditAction.MINISTRY_MESSAGE_REPLAYED,
            obj=school or actor,
            summary=_("%(count)d messages to the Ministry sent again") % {"count": count},
            changes={"state": [OutboxState.DEAD, OutboxState.PENDING], "count": count},
            school=school,
        )
        relay_wake()
    return count


def outbox_backfill(*, school: School) -> int:
    """Write the messages of the school's versions issued before forwarding was switched on (or
    whose message is missing for any reason): idempotent, each version at most once. The
    connection must be on the school's schema. Returns how many were written."""
    written = 0
    for version in issued_versions():
        if OutboxMessage.objects.filter(
            record_id=version.record_id,
            version=version.version,
            kind__in=[MessageKind.SUBMIT, MessageKind.REPLACE],
        ).exists():
            continue
        with transaction.atomic():
            outbox_issued(
                school=school,
                record_id=version.record_id,
                version=version.version,
                replaces_version=version.replaces_version,
                document=version.document,
                personal_id=version.personal_id,
                student_code=version.student_code,
            )
        written += 1
    return written
