"""The PDFs due (portal.PdfDue): the one service that writes them (issue 15).

A school's record is named by its school's schema and its primary key there: transcripts calls
these from inside the school's schema, where it knows the schema's name, not the School row; the
statements find the school by `schema_name` (unique) themselves, so none costs a look-up first.

- `pdf_due_add`: at issue, in the issuing transaction: one row per record (`by_batch` for a record
  a signing batch seals, whose batch renders it); the others are marked queued, since the caller
  sends their message once the transaction commits.
- `pdf_due_take`: the sweep. One `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING`
  marks the due rows that are not queued and not held as queued until a time, and returns them:
  ten sweeps in a row take a row once; two sweeps at once never take the same row.
- `pdf_due_claim`: the worker's lease before it renders (an upsert: a message for a record with no
  row, sent by hand or left from before the table, is claimed the same way).
- `pdf_due_done`: in the transaction that stores the PDF.
- `pdf_due_failed`: a render that raised: attempts + 1, the error kept, due again after a back-off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from ..models import PdfDue, School

RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 6 * 3600

_DUE = PdfDue._meta.db_table
_SCHOOL = School._meta.db_table


class PdfTaken(NamedTuple):
    """A row the sweep marked as queued: where to send the render."""

    schema_name: str
    school_code: str
    record_pk: int


def pdf_retry_delay(attempts: int) -> dt.timedelta:
    """The back-off after the `attempts`-th failed render: 1, 2, 4 ... minutes, at most 6 hours."""
    seconds = RETRY_FIRST_SECONDS * 2 ** max(0, min(attempts, 20) - 1)
    return dt.timedelta(seconds=min(RETRY_MAX_SECONDS, seconds))


def pdf_due_add(
    *,
    schema_name: str,
    records: Iterable[tuple[int, bool]],
    queued_seconds: int | None,
    now: dt.datetime | None = None,
) -> int:
    """Record the PDFs due for these `(record primary key, sealed by a batch)` of the school whose
    schema is `schema_name`, in one statement; returns how many rows were added. Those not sealed
    by a batch are marked queued for `queued_seconds` (the caller sends their messages after the
    commit; None: not queued, the sweep queues them); a record already listed keeps its row. Call
    it in the transaction that issues the records."""
    pks, by_batch = [], []
    for pk, batch in records:
        pks.append(pk)
        by_batch.append(batch)
    if not pks:
        return 0
    now = now or timezone.now()
    until = now + dt.timedelta(seconds=queued_seconds) if queued_seconds is not None else None
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_DUE} (school_id, record_pk, due_at, by_batch, queued_until, lease_owner,
                                lease_until, attempts, last_error, last_error_at, created_at)
            SELECT s.id, v.pk, %(now)s, v.by_batch,
                   CASE WHEN v.by_batch THEN NULL ELSE %(until)s::timestamptz END,
                   '', NULL, 0, '', NULL, %(now)s
            FROM unnest(%(pks)s::integer[], %(by_batch)s::boolean[]) AS v(pk, by_batch)
            JOIN {_SCHOOL} s ON s.schema_name = %(schema)s
            ON CONFLICT (school_id, record_pk) DO NOTHING
            """,  # noqa: S608 -- table names from the models, values bound
            {
                "now": now,
                "until": until,
                "pks": pks,
                "by_batch": by_batch,
                "schema": schema_name,
            },
        )
        return cursor.rowcount


def pdf_due_take(
    *,
    limit: int,
    queued_seconds: int,
    seal_grace_seconds: int,
    now: dt.datetime | None = None,
) -> list[PdfTaken]:
    """The sweep: mark as queued (for `queued_seconds`) at most `limit` rows that are due, not
    queued and not held by a worker, and return them, oldest first, in one statement.

    Due: `due_at` has come, and for a record sealed by a batch `seal_grace_seconds` more (the
    batch's second phase seals its PDF; after that, a batch that gave up, it is rendered unsealed).
    Rows locked by a concurrent sweep or by the transaction storing their PDF are skipped."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {_DUE} AS d SET queued_until = %(until)s
            FROM (
                SELECT id FROM {_DUE}
                WHERE due_at <= %(now)s
                  AND (NOT by_batch OR due_at <= %(batch_due)s)
                  AND (queued_until IS NULL OR queued_until < %(now)s)
                  AND (lease_until IS NULL OR lease_until < %(now)s)
                ORDER BY due_at, id
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            ) AS due, {_SCHOOL} AS s
            WHERE d.id = due.id AND s.id = d.school_id
            RETURNING s.schema_name, s.code, d.record_pk, d.due_at, d.id
            """,  # noqa: S608 -- table names from the models, values bound
            {
                "now": now,
                "until": now + dt.timedelta(seconds=queued_seconds),
                "batch_due": now - dt.timedelta(seconds=seal_grace_seconds),
                "limit": limit,
            },
        )
        rows = sorted(cursor.fetchall(), key=lambda row: (row[3], row[4]))
    return [PdfTaken(schema_name, code, record_pk) for schema_name, code, record_pk, _at, _id in rows]


def pdf_due_claim(
    *,
    schema_name: str,
    record_pk: int,
    worker: str,
    lease_seconds: int,
    seal_grace_seconds: int,
    now: dt.datetime | None = None,
) -> bool:
    """The worker's lease on a record's PDF before it renders it: True when `worker` holds it now.

    Refused while another worker's lease runs, before the row is due (a back-off after a failure,
    a batch's grace), or when the school is unknown. A record with no row gets one, held (a message
    sent by hand, or from before the table): rendering it then completes the row."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_DUE} AS d (school_id, record_pk, due_at, by_batch, queued_until,
                                     lease_owner, lease_until, attempts, last_error,
                                     last_error_at, created_at)
            SELECT s.id, %(pk)s, %(now)s, false, NULL, %(worker)s, %(lease)s, 0, '', NULL, %(now)s
            FROM {_SCHOOL} s WHERE s.schema_name = %(schema)s
            ON CONFLICT (school_id, record_pk) DO UPDATE
                SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until,
                    queued_until = NULL
                WHERE d.due_at <= %(now)s
                  AND (NOT d.by_batch OR d.due_at <= %(batch_due)s)
                  AND (d.lease_until IS NULL OR d.lease_until < %(now)s OR d.lease_owner = %(worker)s)
            RETURNING d.id
            """,  # noqa: S608 -- table names from the models, values bound
            {
                "pk": record_pk,
                "now": now,
                "worker": worker,
                "lease": now + dt.timedelta(seconds=lease_seconds),
                "batch_due": now - dt.timedelta(seconds=seal_grace_seconds),
                "schema": schema_name,
            },
        )
        return cursor.fetchone() is not None


def pdf_due_done(*, schema_name: str, record_pk: int) -> None:
    """The record's PDF is stored: its row goes (call it in the transaction that stores it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {_DUE} d USING {_SCHOOL} s
            WHERE s.schema_name = %s AND d.school_id = s.id AND d.record_pk = %s
            """,  # noqa: S608 -- table names from the models, values bound
            [schema_name, record_pk],
        )


@transaction.atomic
def pdf_due_failed(
    *, schema_name: str, record_pk: int, worker: str, error: str, now: dt.datetime | None = None
) -> PdfDue | None:
    """The render by `worker` raised: attempts + 1, the error kept, the lease released and the row
    due again after pdf_retry_delay (as the task's, no longer a batch's). None when the row is no
    longer this worker's (taken over after its lease ran out, or done)."""
    now = now or timezone.now()
    row = (
        PdfDue.objects.filter(school__schema_name=schema_name, record_pk=record_pk, lease_owner=worker)
        .select_for_update()
        .first()
    )
    if row is None:
        return None
    row.attempts += 1
    row.due_at = now + pdf_retry_delay(row.attempts)
    row.by_batch = False
    row.lease_owner, row.lease_until, row.queued_until = "", None, None
    row.last_error, row.last_error_at = error[:2000], now
    row.save(
        update_fields=[
            "attempts",
            "due_at",
            "by_batch",
            "lease_owner",
            "lease_until",
            "queued_until",
            "last_error",
            "last_error_at",
        ]
    )
    return row
