"""The relay: the outbox's messages to the Ministry's repository, and the verdicts back (design.md §5).

One run (registry.tasks.forward_relay, woken by beat and after each issue):

1. Messages waiting for a personal ID whose student now has a verified one become due
   (at most once a minute; the number is read from the school's own schema).
2. Claim due messages with `SELECT … FOR UPDATE SKIP LOCKED`: pending ones whose time has come,
   sent ones whose verdict is to be asked for, and any whose lease expired (its relay died). A
   message is claimed only when every earlier message of the same record has its verdict, so a
   record's submit, replace and cancel reach the repository in order. The claim is a lease
   (owner, until), committed at once; nothing is held open while we talk to the repository.
3. Send or ask, for a school's claimed messages at a time, over the process's pooled client
   (registry.ministry), several at once (HOCBA_FORWARD_CONCURRENCY threads).
4. Write the outcomes in one transaction per school, each only if we still hold the lease:
   received (then the record is "queued for the Ministry"), throttled (not before Retry-After),
   failed (back-off: base × 2^attempts, capped, with jitter; a dead letter after
   HOCBA_FORWARD_MAX_ATTEMPTS), refused (a dead letter at once), accepted (the record
   "acknowledged"; the document is dropped), rejected (the record "rejected", with the Ministry's
   reasons for the school to read). The record's status moves through transcripts' service in the
   same transaction as the outbox row.

Every time is stored in the database (`next_attempt_at`), never as a Celery countdown.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.models import School
from portal.services import connection_tenant_reset, connection_tenant_set
from schools.selectors import students_personal_ids
from transcripts.models import YearRecordStatus
from transcripts.records.services import year_record_forwarding_note

from . import ministry
from .choices import FINISHED_STATES, MessageKind, OutboxState, RejectionCode
from .models import OutboxMessage

log = logging.getLogger(__name__)

# The first verdict poll after a receipt, doubling up to the cap (seconds, with jitter).
POLL_FIRST = 1.0
POLL_CAP = 300.0
# Messages waiting for a personal ID are looked at no more often than this (seconds).
PERSONAL_ID_EVERY = 60
# A run with nothing due now waits for what falls due within this many seconds (verdicts).
SOON = 5.0

CLAIM_SQL = """
UPDATE registry_outboxmessage o
   SET lease_owner = %(worker)s,
       lease_until = %(until)s,
       state = CASE WHEN o.state = 'sent' THEN 'sent' ELSE 'sending' END
  FROM (
        SELECT m.id
          FROM registry_outboxmessage m
         WHERE ((m.state IN ('pending', 'sent') AND m.next_attempt_at <= %(now)s
                 AND (m.lease_until IS NULL OR m.lease_until < %(now)s))
                OR (m.state = 'sending' AND m.lease_until < %(now)s))
           AND NOT EXISTS (
                SELECT 1 FROM registry_outboxmessage p
                 WHERE p.record_id = m.record_id AND p.id < m.id
                   AND p.state <> ALL(%(finished)s))
         ORDER BY m.next_attempt_at, m.id
         LIMIT %(limit)s
           FOR UPDATE OF m SKIP LOCKED
       ) due
 WHERE o.id = due.id
RETURNING o.id
"""


@dataclass
class RelayReport:
    """What one run did, by outcome (a task's return value; the benchmark reads it)."""

    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    personal_ids_found: int = 0
    lost_leases: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "personal_ids_found": self.personal_ids_found,
            "lost_leases": self.lost_leases,
            **dict(self.outcomes),
        }


def backoff(attempts: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Seconds before attempt `attempts` + 1: base × 2^(attempts-1), capped, half of it jittered
    (so that messages that failed together do not come back together)."""
    base = float(settings.HOCBA_FORWARD_BACKOFF_BASE if base is None else base)
    cap = float(settings.HOCBA_FORWARD_BACKOFF_CAP if cap is None else cap)
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 -- jitter, not a secret


def relay_run(*, worker: str, seconds: float | None = None, batch: int | None = None) -> RelayReport:
    """One run of the relay, until nothing is due or `seconds` have passed. Without a repository
    configured (HOCBA_MINISTRY_URL) nothing is sent: messages wait."""
    report = RelayReport()
    if not ministry.configured():
        return report
    connection_tenant_reset()
    deadline = time.monotonic() + (settings.HOCBA_FORWARD_RUN_SECONDS if seconds is None else seconds)
    limit = settings.HOCBA_FORWARD_BATCH if batch is None else batch
    if cache.add("registry:personal-ids", 1, timeout=PERSONAL_ID_EVERY):
        report.personal_ids_found = personal_ids_resolve()
    schools: dict[int, School] = {}
    while time.monotonic() < deadline:
        claimed = _claim(worker, limit)
        if not claimed:
            # Verdicts are asked for a second or two after the receipt: a run that has just sent
            # a batch waits for them (up to SOON seconds) instead of leaving them to the next run.
            wait = _next_due_in(SOON)
            if wait is None or time.monotonic() + wait >= deadline:
                break
            time.sleep(max(0.05, wait))
            continue
        report.claimed += len(claimed)
        by_school: dict[int, list[OutboxMessage]] = defaultdict(list)
        for message in claimed:
            by_school[message.school_id].append(message)
        missing = set(by_school) - set(schools)
        if missing:
            schools.update(School.objects.in_bulk(list(missing)))
        lease = _Lease(worker, [m.pk for m in claimed])
        for school_id, messages in by_school.items():
            _exchange(schools[school_id], messages, lease, report)
            lease.release(m.pk for m in messages)
    return report


def _next_due_in(within: float) -> float | None:
    """Seconds until the next pending or sent message is due, if within `within` seconds."""
    now = timezone.now()
    soonest = (
        OutboxMessage.objects.filter(
            state__in=[OutboxState.PENDING, OutboxState.SENT],
            next_attempt_at__lte=now + timedelta(seconds=within),
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return None if soonest is None else max(0.0, (soonest - now).total_seconds())


def _claim(worker: str, limit: int) -> list[OutboxMessage]:
    now = timezone.now()
    until = now + timedelta(seconds=settings.HOCBA_FORWARD_LEASE_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            CLAIM_SQL,
            {
                "worker": worker,
                "until": until,
                "now": now,
                "limit": limit,
                "finished": sorted(FINISHED_STATES),
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    return list(OutboxMessage.objects.select_related("school").filter(pk__in=ids).order_by("pk"))


class _Lease:
    """The claimed messages not yet written back, renewed before each wave of requests: a slow
    repository (every request at its timeout) never lets the lease run out under a relay that is
    still working, while a relay that died lets go after HOCBA_FORWARD_LEASE_SECONDS."""

    def __init__(self, worker: str, pks: list[int]):
        self.worker = worker
        self.held = set(pks)

    def renew(self) -> None:
        until = timezone.now() + timedelta(seconds=settings.HOCBA_FORWARD_LEASE_SECONDS)
        OutboxMessage.objects.filter(pk__in=self.held, lease_owner=self.worker).update(lease_until=until)

    def release(self, pks: Iterable[int]) -> None:
        self.held.difference_update(pks)


def _exchange(school: School, messages: list[OutboxMessage], lease: _Lease, report: RelayReport) -> None:
    """Talk to the repository about a school's claimed messages, a wave of
    HOCBA_FORWARD_CONCURRENCY at a time (the lease renewed before each), then write what it said."""
    worker = lease.worker
    work: list[tuple[OutboxMessage, str]] = []
    for message in messages:
        if message.state == OutboxState.SENT:
            work.append((message, "poll"))
        elif message.kind == MessageKind.CANCEL and not _cancel_needed(message):
            work.append((message, "void"))
        else:
            work.append((message, "send"))
    concurrency = max(1, settings.HOCBA_FORWARD_CONCURRENCY)
    answers: list[Any] = []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(work))) as pool:
        for start in range(0, len(work), concurrency):
            if start:
                lease.renew()
            answers.extend(pool.map(_talk, work[start : start + concurrency]))
    connection_tenant_set(school)
    try:
        with transaction.atomic():
            for (message, action), answer in zip(work, answers, strict=True):
                outcome = _record(school, message, action, answer, worker)
                report.count(outcome)
                if outcome == "lost_lease":
                    report.lost_leases += 1
    finally:
        connection_tenant_reset()


def _cancel_needed(cancel: OutboxMessage) -> bool:
    """A cancel goes only if the Ministry holds the version: its own message was acknowledged (or
    was received and may be; the repository decides). Rejected or never sent: nothing to cancel."""
    state = (
        OutboxMessage.objects.filter(
            record_id=cancel.record_id,
            version=cancel.version,
            kind__in=[MessageKind.SUBMIT, MessageKind.REPLACE],
        )
        .values_list("state", flat=True)
        .first()
    )
    return state not in (OutboxState.REJECTED, OutboxState.VOID, None)


def _talk(item: tuple[OutboxMessage, str]) -> ministry.Answer | ministry.Verdict | None:
    message, action = item
    if action == "poll":
        return ministry.verdict(message.receipt_id)
    if action == "void":
        return None
    return ministry.send(
        ministry.Message(
            key=message.idempotency_key,
            kind=message.kind,
            school_code=message.school.code,
            record_id=message.record_id,
            version=message.version,
            replaces_version=message.replaces_version,
            personal_id=message.personal_id or "",
            document=bytes(message.document) if message.document is not None else None,
            reason=message.reason,
        )
    )


def _update(message: OutboxMessage, worker: str, **fields: Any) -> bool:
    """Write the outcome only if the lease is still ours (a relay that outlived its lease finds
    the message taken by another and writes nothing)."""
    fields.setdefault("lease_owner", "")
    fields.setdefault("lease_until", None)
    fields.setdefault("last_attempt_at", timezone.now())
    return bool(OutboxMessage.objects.filter(pk=message.pk, lease_owner=worker).update(**fields))


def _record(school: School, message: OutboxMessage, action: str, answer: Any, worker: str) -> str:
    now = timezone.now()
    if action == "void":
        if not _update(message, worker, state=OutboxState.VOID, next_attempt_at=None):
            return "lost_lease"
        return "void"
    if action == "poll":
        return _record_verdict(school, message, answer, worker, now)
    return _record_answer(school, message, answer, worker, now)


def _record_answer(school: School, message: OutboxMessage, answer: ministry.Answer, worker: str, now) -> str:
    base = {"last_status": answer.status, "last_error": answer.error}
    if answer.outcome == "received":
        if not _update(
            message,
            worker,
            state=OutboxState.SENT,
            receipt_id=answer.receipt_id,
            sent_at=now,
            polls=0,
            next_attempt_at=now + timedelta(seconds=POLL_FIRST),
            **base,
        ):
            return "lost_lease"
        if message.kind != MessageKind.CANCEL:
            _record_status(
                school, message, YearRecordStatus.QUEUED, _("Received by the Ministry's repository.")
            )
        return "received"
    if answer.outcome == "throttled":
        wait = answer.retry_after if answer.retry_after is not None else ministry.DEFAULT_RETRY_AFTER
        delay = wait + random.uniform(0, min(1.0, wait / 4 + 0.1))  # noqa: S311 -- jitter
        ok = _update(
            message, worker, state=OutboxState.PENDING, next_attempt_at=now + timedelta(seconds=delay), **base
        )
        return "throttled" if ok else "lost_lease"
    attempts = message.attempts + 1
    if answer.outcome == "refused" or attempts >= settings.HOCBA_FORWARD_MAX_ATTEMPTS:
        ok = _update(message, worker, state=OutboxState.DEAD, attempts=attempts, next_attempt_at=None, **base)
        if ok:
            log.warning(
                "Dead letter %s %s v%s: %s", message.kind, message.record_id, message.version, answer.error
            )
        return "dead" if ok else "lost_lease"
    ok = _update(
        message,
        worker,
        state=OutboxState.PENDING,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=backoff(attempts)),
        **base,
    )
    return "retry" if ok else "lost_lease"


def _record_verdict(
    school: School, message: OutboxMessage, verdict: ministry.Verdict, worker: str, now
) -> str:
    base = {"last_status": verdict.status, "last_error": verdict.error}
    if verdict.outcome == "accepted":
        if not _update(
            message,
            worker,
            state=OutboxState.ACKNOWLEDGED,
            decided_at=now,
            document=None,
            next_attempt_at=None,
            **base,
        ):
            return "lost_lease"
        if message.kind != MessageKind.CANCEL:
            _record_status(
                school,
                message,
                YearRecordStatus.ACKNOWLEDGED,
                _("Acknowledged by the Ministry's repository."),
            )
        return "acknowledged"
    if verdict.outcome == "rejected":
        if not _update(
            message,
            worker,
            state=OutboxState.REJECTED,
            decided_at=now,
            reasons=verdict.reasons,
            next_attempt_at=None,
            **base,
        ):
            return "lost_lease"
        if message.kind != MessageKind.CANCEL:
            _record_status(school, message, YearRecordStatus.REJECTED, rejection_text(verdict.reasons))
        return "rejected"
    if verdict.outcome == "unknown":
        # The repository lost the receipt: send again; the key makes it safe.
        ok = _update(message, worker, state=OutboxState.PENDING, next_attempt_at=now, receipt_id="", **base)
        return "resend" if ok else "lost_lease"
    polls = message.polls + 1  # "received" (not decided yet) or "retry" (no usable answer)
    delay = backoff(polls, base=POLL_FIRST, cap=POLL_CAP)
    ok = _update(
        message,
        worker,
        state=OutboxState.SENT,
        polls=polls,
        next_attempt_at=now + timedelta(seconds=delay),
        **base,
    )
    return "waiting" if ok else "lost_lease"


def rejection_text(reasons: list[dict[str, str]]) -> str:
    """The Ministry's reasons as the school reads them: our words for each code (once), then the
    repository's own details."""
    by_code: dict[str, list[str]] = {}
    for reason in reasons:
        details = by_code.setdefault(reason.get("code", ""), [])
        if reason.get("message"):
            details.append(reason["message"])
    parts = []
    for code, details in by_code.items():
        ours = str(RejectionCode(code).label) if code in RejectionCode.values else code
        parts.append(f"{ours} ({'; '.join(details)})" if details else ours)
    return " ".join(parts) or _("Rejected by the Ministry without a reason.")


def _record_status(school: School, message: OutboxMessage, status: str, note: str) -> None:
    """The record's own status follows (transcripts' service; the connection is on the school)."""
    year_record_forwarding_note(
        school=school, record_id=message.record_id, version=message.version, to_status=status, note=note
    )


def personal_ids_resolve() -> int:
    """Messages waiting for a personal ID whose student now has a verified number become due."""
    waiting: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for pk, school_id, code in OutboxMessage.objects.filter(
        state=OutboxState.WAITING_PERSONAL_ID
    ).values_list("pk", "school_id", "student_code"):
        waiting[school_id].append((pk, code))
    found = 0
    now = timezone.now()
    for school in School.objects.filter(pk__in=list(waiting)):
        connection_tenant_set(school)
        try:
            numbers = students_personal_ids(code for _pk, code in waiting[school.pk])
            with transaction.atomic():
                for pk, code in waiting[school.pk]:
                    if code in numbers:
                        found += OutboxMessage.objects.filter(
                            pk=pk, state=OutboxState.WAITING_PERSONAL_ID
                        ).update(state=OutboxState.PENDING, personal_id=numbers[code], next_attempt_at=now)
        finally:
            connection_tenant_reset()
    return found
