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

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
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
from transcripts.records.services import year_records_forwarding_notes

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
         ORDER BY (m.state = 'sent'), m.next_attempt_at, m.id
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
    """The claimed messages not yet written back, renewed while requests are out: a slow
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
    """Talk to the repository about a school's claimed messages, HOCBA_FORWARD_CONCURRENCY at a
    time (the lease renewed while they are out), then write what it said."""
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
    # All of the batch queued at once, HOCBA_FORWARD_CONCURRENCY in flight (no wave waits for its
    # slowest request); the lease renewed while requests are still out.
    renew_every = max(1.0, settings.HOCBA_FORWARD_LEASE_SECONDS / 3)
    with ThreadPoolExecutor(max_workers=min(concurrency, len(work))) as pool:
        futures = [pool.submit(_talk, item) for item in work]
        pending = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=renew_every)
            if pending:
                lease.renew()
        answers = [future.result() for future in futures]
    writes = _Writes()
    outcomes = [
        (message, _record(message, action, answer, writes))
        for (message, action), answer in zip(work, answers, strict=True)
    ]
    connection_tenant_set(school)
    try:
        with transaction.atomic():
            held = writes.flush(worker)
            notes = [
                (m.record_id, m.version, status, note) for m, status, note in writes.statuses if m.pk in held
            ]
            if notes:
                year_records_forwarding_notes(school=school, notes=notes)
    finally:
        connection_tenant_reset()
    for message, outcome in outcomes:
        if message.pk not in held:
            report.count("lost_lease")
            report.lost_leases += 1
            continue
        report.count(outcome)
        if outcome == "dead":
            log.warning(
                "Dead letter %s %s v%s: %s",
                message.kind,
                message.record_id,
                message.version,
                writes.error_of(message),
            )


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


# The columns an outcome writes, in the order of the bulk UPDATE's VALUES, with their SQL types.
_OUTCOME_COLUMNS = (
    ("state", "varchar"),
    ("receipt_id", "varchar"),
    ("sent_at", "timestamptz"),
    ("polls", "integer"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("last_status", "smallint"),
    ("last_error", "text"),
    ("reasons", "jsonb"),
    ("decided_at", "timestamptz"),
    ("last_attempt_at", "timestamptz"),
)


class _Writes:
    """A batch's outcomes, written at once: one UPDATE for the outbox rows still leased to this
    relay (the others were taken over: their outcome is dropped), then the records' statuses."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[OutboxMessage, dict[str, Any]]] = {}
        self.statuses: list[tuple[OutboxMessage, str, str]] = []

    def update(self, message: OutboxMessage, **fields: Any) -> None:
        fields.setdefault("last_attempt_at", timezone.now())
        self.rows[message.pk] = (message, fields)

    def status(self, message: OutboxMessage, status: str, note: str) -> None:
        if message.kind != MessageKind.CANCEL:  # a cancel's version is revoked: its status stays
            self.statuses.append((message, status, note))

    def error_of(self, message: OutboxMessage) -> str:
        return self.rows[message.pk][1].get("last_error", "")

    def flush(self, worker: str) -> set[int]:
        """UPDATE … FROM (VALUES …) WHERE the lease is ours RETURNING id: the ids written."""
        if not self.rows:
            return set()
        placeholders, params = [], []
        for pk, (message, fields) in self.rows.items():
            values: list[Any] = [pk]
            for column, _type in _OUTCOME_COLUMNS:
                value = fields[column] if column in fields else getattr(message, column)
                values.append(json.dumps(value) if column == "reasons" else value)
            values.append(bool(fields.get("drop_document")))
            casts = ["%s::bigint", *(f"%s::{sql_type}" for _c, sql_type in _OUTCOME_COLUMNS), "%s::boolean"]
            placeholders.append(f"({', '.join(casts)})")
            params.extend(values)
        names = ", ".join(["id", *(c for c, _t in _OUTCOME_COLUMNS), "drop_document"])
        sets = ", ".join(f"{c} = v.{c}" for c, _t in _OUTCOME_COLUMNS)
        sql = (
            f"UPDATE registry_outboxmessage o SET {sets}, lease_owner = '', lease_until = NULL, "  # noqa: S608 -- our own column names
            "document = CASE WHEN v.drop_document THEN NULL ELSE o.document END "
            f"FROM (VALUES {', '.join(placeholders)}) AS v({names}) "
            "WHERE o.id = v.id AND o.lease_owner = %s RETURNING o.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, worker])
            return {row[0] for row in cursor.fetchall()}


def _record(message: OutboxMessage, action: str, answer: Any, writes: _Writes) -> str:
    now = timezone.now()
    if action == "void":
        writes.update(message, state=OutboxState.VOID, next_attempt_at=None)
        return "void"
    if action == "poll":
        return _record_verdict(message, answer, writes, now)
    return _record_answer(message, answer, writes, now)


def _record_answer(message: OutboxMessage, answer: ministry.Answer, writes: _Writes, now) -> str:
    base = {"last_status": answer.status, "last_error": answer.error}
    if answer.outcome == "received":
        writes.update(
            message,
            state=OutboxState.SENT,
            receipt_id=answer.receipt_id,
            sent_at=now,
            polls=0,
            next_attempt_at=now + timedelta(seconds=POLL_FIRST),
            **base,
        )
        writes.status(message, YearRecordStatus.QUEUED, _("Received by the Ministry's repository."))
        return "received"
    if answer.outcome == "throttled":
        wait = answer.retry_after if answer.retry_after is not None else ministry.DEFAULT_RETRY_AFTER
        delay = wait + random.uniform(0, min(1.0, wait / 4 + 0.1))  # noqa: S311 -- jitter
        writes.update(
            message, state=OutboxState.PENDING, next_attempt_at=now + timedelta(seconds=delay), **base
        )
        return "throttled"
    attempts = message.attempts + 1
    if answer.outcome == "refused" or attempts >= settings.HOCBA_FORWARD_MAX_ATTEMPTS:
        writes.update(message, state=OutboxState.DEAD, attempts=attempts, next_attempt_at=None, **base)
        return "dead"
    writes.update(
        message,
        state=OutboxState.PENDING,
        attempts=attempts,
        next_attempt_at=now + timedelta(seconds=backoff(attempts)),
        **base,
    )
    return "retry"


def _record_verdict(message: OutboxMessage, verdict: ministry.Verdict, writes: _Writes, now) -> str:
    base = {"last_status": verdict.status, "last_error": verdict.error}
    if verdict.outcome == "accepted":
        writes.update(
            message,
            state=OutboxState.ACKNOWLEDGED,
            decided_at=now,
            drop_document=True,
            next_attempt_at=None,
            **base,
        )
        writes.status(message, YearRecordStatus.ACKNOWLEDGED, _("Acknowledged by the Ministry's repository."))
        return "acknowledged"
    if verdict.outcome == "rejected":
        writes.update(
            message,
            state=OutboxState.REJECTED,
            decided_at=now,
            reasons=verdict.reasons,
            next_attempt_at=None,
            **base,
        )
        writes.status(message, YearRecordStatus.REJECTED, rejection_text(verdict.reasons))
        return "rejected"
    if verdict.outcome == "unknown":
        # The repository lost the receipt: send again; the key makes it safe.
        writes.update(message, state=OutboxState.PENDING, next_attempt_at=now, receipt_id="", **base)
        return "resend"
    polls = message.polls + 1  # "received" (not decided yet) or "retry" (no usable answer)
    delay = backoff(polls, base=POLL_FIRST, cap=POLL_CAP)
    writes.update(
        message, state=OutboxState.SENT, polls=polls, next_attempt_at=now + timedelta(seconds=delay), **base
    )
    return "waiting"


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
