"""Checking the audit chains: every chained table, in public and in each school (docs/security.md).

The database chains each audit row to the previous one as it is inserted (portal migration 0021:
public.hocba_audit_chain(), a BEFORE INSERT trigger, and the head row of each chain in
public.hocba_audit_chain_head). This module walks each chain in the database with the same SQL
functions, and names the first row that does not follow:

- a row whose chain_seq is not the previous one's plus one: rows are missing before it
  (deleted), or it repeats a position (inserted);
- a row whose chain_hash is not sha256(previous hash, its position, its canonical text): it was
  changed after it was chained, or inserted with a forged hash;
- a row without chain columns: inserted with the trigger disabled;
- the chain's last row against its head: the head ahead of the last row means the last rows were
  deleted (the head moves only with an insert); no head for a table with rows, or a head whose hash
  is not the last row's, means the head or the tail was rewritten;
- the trigger itself missing or disabled on a chained table (rows written meanwhile are not chained).

Each chain is checked by one statement (one snapshot: a concurrent insert moves the rows and the
head together), walking the rows in chain_seq order by its unique index, in the server: the client
holds only the totals, whatever the table's size. A second statement finds the first broken row's
details when there is one.

What it cannot prove: an attacker able to rewrite a whole chain and its head (a database owner
who recomputes every hash) leaves a valid chain. Anchors answer that: `audit_chain_heads()` is
what to publish (the heads, as printed by `manage.py audit_verify --heads FILE`), and
`anchors=` checks that every published head is still in its chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from .db import connection
from .models import School

# The chained tables (portal 0021, registry 0007, transcripts 0017). Named here, not found in the
# catalogue: a chain whose trigger was dropped must still be checked.
PUBLIC_CHAINS: tuple[str, ...] = (
    "portal_auditentry",
    "portal_copylog",
    "portal_verificationlog",
    "registry_apicall",
    "registry_personaldataexport",
)
SCHOOL_CHAINS: tuple[str, ...] = ("transcripts_assessmentchange", "transcripts_yearrecordevent")
TRIGGER = "zz_audit_chain"  # BEFORE INSERT: the row's place and hash
HEAD_TRIGGER = "zz_audit_chain_head"  # deferred, at commit: the chain's head


class BreakKind:
    UNCHAINED = "unchained"
    MISSING = "missing"
    INSERTED = "inserted"
    EDITED = "edited"
    TAIL_DELETED = "tail_deleted"
    HEAD_MISMATCH = "head_mismatch"
    NO_HEAD = "no_head"
    TRIGGER_OFF = "trigger_off"
    NO_TABLE = "no_table"
    ANCHOR = "anchor"


@dataclass(frozen=True)
class ChainBreak:
    """The first thing wrong in one chain: where, which row, what."""

    schema: str
    table: str
    kind: str
    message: str
    school: str = ""  # the school's code; empty for public
    seq: int | None = None
    row_id: int | None = None

    def line(self) -> str:
        where = (
            _("school %(code)s (%(schema)s)") % {"code": self.school, "schema": self.schema}
            if self.school
            else self.schema
        )
        position = ""
        if self.seq is not None or self.row_id is not None:
            position = " " + _("row #%(seq)s (id %(id)s)") % {
                "seq": "-" if self.seq is None else self.seq,
                "id": "-" if self.row_id is None else self.row_id,
            }
        return f"{self.table} [{where}]{position}: {self.message}"


@dataclass
class ChainReport:
    chains: int = 0
    rows: int = 0
    seconds: float = 0.0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class Chain:
    schema: str
    table: str
    school: str = ""


@dataclass(frozen=True)
class Anchor:
    """A head published earlier: the row at `seq` of that chain had this hash."""

    schema: str
    table: str
    seq: int
    hash: str  # hex


def _qualified(schema: str, table: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(schema)}.{quote(table)}"


# One pass over the chain, in chain_seq order (the unique index), in one snapshot with the head.
WALK_SQL = """
WITH walk AS (
    SELECT t.id, t.chain_seq, t.chain_hash,
           lag(t.chain_seq) OVER w AS prev_seq,
           public.hocba_audit_chain_step(
               coalesce(lag(t.chain_hash) OVER w, ''::bytea), t.chain_seq, public.hocba_audit_chain_text(t)
           ) AS expected
    FROM {table} AS t
    WINDOW w AS (ORDER BY t.chain_seq)
), totals AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE chain_seq IS NULL OR chain_hash IS NULL) AS unchained,
           max(chain_seq) AS last_seq,
           min(chain_seq) FILTER (
               WHERE chain_seq <> coalesce(prev_seq, 0) + 1 OR chain_hash IS DISTINCT FROM expected
           ) AS first_broken
    FROM walk
)
SELECT totals.n, totals.unchained, totals.last_seq, totals.first_broken,
       (SELECT l.chain_hash FROM {table} AS l WHERE l.chain_seq = totals.last_seq) AS last_hash,
       h.seq, h.hash
FROM totals
LEFT JOIN public.hocba_audit_chain_head AS h ON h.schema_name = %s AND h.table_name = %s
"""

_BROKEN_ROW = """
SELECT id, chain_seq, prev_seq FROM (
    SELECT t.id, t.chain_seq, lag(t.chain_seq) OVER (ORDER BY t.chain_seq) AS prev_seq FROM {table} AS t
) AS walk
WHERE chain_seq = %s
LIMIT 1
"""


def _table_exists(cursor, schema: str, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [_qualified(schema, table)])
    return bool(cursor.fetchone()[0])


def _trigger_break(cursor, chain: Chain) -> ChainBreak | None:
    """The chain's two triggers (the row's hash, the head at commit), present and enabled."""
    cursor.execute(
        "SELECT tgname, tgenabled FROM pg_catalog.pg_trigger "
        "WHERE tgrelid = %s::regclass AND tgname IN (%s, %s)",
        [_qualified(chain.schema, chain.table), TRIGGER, HEAD_TRIGGER],
    )
    found = dict(cursor.fetchall())
    if all(found.get(name) in ("O", "A") for name in (TRIGGER, HEAD_TRIGGER)):
        return None
    message = (
        _("the chain trigger is missing: rows inserted now are not chained")
        if len(found) < 2
        else _("the chain trigger is disabled: rows inserted now are not chained")
    )
    return ChainBreak(chain.schema, chain.table, BreakKind.TRIGGER_OFF, message, chain.school)


def chain_check(chain: Chain, *, cursor) -> tuple[int, ChainBreak | None, ChainBreak | None]:
    """(rows, the first break in the chain or its tail, a break of its trigger) for one chain."""
    if not _table_exists(cursor, chain.schema, chain.table):
        missing = ChainBreak(
            chain.schema, chain.table, BreakKind.NO_TABLE, _("the table does not exist"), chain.school
        )
        return 0, missing, None
    trigger = _trigger_break(cursor, chain)
    table = _qualified(chain.schema, chain.table)
    cursor.execute(WALK_SQL.format(table=table), [chain.schema, chain.table])
    rows, unchained, last_seq, first_broken, last_hash, head_seq, head_hash = cursor.fetchone()

    def found(kind: str, message: str, seq: int | None = None, row_id: int | None = None) -> ChainBreak:
        return ChainBreak(chain.schema, chain.table, kind, message, chain.school, seq, row_id)

    if first_broken is not None:
        cursor.execute(_BROKEN_ROW.format(table=table), [first_broken])
        row_id, seq, prev_seq = cursor.fetchone()
        expected = (prev_seq or 0) + 1
        if seq > expected + 1:
            message = _("rows #%(first)d to #%(last)d are missing before this row: deleted") % {
                "first": expected,
                "last": seq - 1,
            }
            return rows, found(BreakKind.MISSING, message, seq, row_id), trigger
        if seq > expected:
            message = _("row #%(first)d is missing before this row: deleted") % {"first": expected}
            return rows, found(BreakKind.MISSING, message, seq, row_id), trigger
        if seq < expected:
            message = _("this row repeats position #%(seq)d: a row was inserted around the chain") % {
                "seq": seq
            }
            return rows, found(BreakKind.INSERTED, message, seq, row_id), trigger
        message = _(
            "the row does not match its hash: it was changed after it was written, "
            "or inserted with a forged hash"
        )
        return rows, found(BreakKind.EDITED, message, seq, row_id), trigger
    if unchained:
        cursor.execute(
            f"SELECT id FROM {table} WHERE chain_seq IS NULL OR chain_hash IS NULL ORDER BY id LIMIT 1"  # noqa: S608
        )
        message = _("%(count)d rows have no place in the chain: inserted with the trigger disabled") % {
            "count": unchained
        }
        return rows, found(BreakKind.UNCHAINED, message, None, cursor.fetchone()[0]), trigger
    if head_seq is None:
        if rows:
            message = _("the chain's head is missing (the table has %(rows)d rows): it was deleted") % {
                "rows": rows
            }
            return rows, found(BreakKind.NO_HEAD, message, last_seq), trigger
        return rows, None, trigger
    if not rows or head_seq > last_seq:
        message = _("the last rows were deleted: the head is at #%(head)d, the last row at #%(last)d") % {
            "head": head_seq,
            "last": last_seq or 0,
        }
        return rows, found(BreakKind.TAIL_DELETED, message, last_seq), trigger
    if head_seq < last_seq or bytes(head_hash) != bytes(last_hash):
        message = _(
            "the last row does not match the chain's head (#%(head)d): the tail or the head was rewritten"
        ) % {"head": head_seq}
        return rows, found(BreakKind.HEAD_MISMATCH, message, last_seq), trigger
    return rows, None, trigger


def chains_for(
    *, school_code: str | None = None, table: str | None = None, public_only: bool = False
) -> list[Chain]:
    """The chains to check: the public ones, then each school's (or one school's, one table's).

    Raises LookupError for an unknown school code or table name.
    """
    if table is not None and table not in PUBLIC_CHAINS + SCHOOL_CHAINS:
        raise LookupError(table)
    chains: list[Chain] = []
    if school_code is None:
        chains += [Chain(settings.PUBLIC_SCHEMA_NAME, name) for name in PUBLIC_CHAINS]
    if not public_only:
        schools = School.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("code")
        if school_code is not None:
            schools = schools.filter(code=school_code)
            if not schools.exists():
                raise LookupError(school_code)
        for code, schema in schools.values_list("code", "schema_name"):
            chains += [Chain(schema, name, code) for name in SCHOOL_CHAINS]
    return [chain for chain in chains if table is None or chain.table == table]


def anchor_breaks(anchors: Iterable[Anchor], *, cursor, schools: dict[str, str]) -> list[ChainBreak]:
    """Each published head that is no longer in its chain (the chain was rewritten since)."""
    breaks = []
    for anchor in anchors:
        school = schools.get(anchor.schema, "")
        if not _table_exists(cursor, anchor.schema, anchor.table):
            continue  # named by the chain's own check
        cursor.execute(
            f"SELECT id, chain_hash FROM {_qualified(anchor.schema, anchor.table)} WHERE chain_seq = %s",  # noqa: S608
            [anchor.seq],
        )
        row = cursor.fetchone()
        if row is not None and bytes(row[1]).hex() == anchor.hash.lower():
            continue
        message = _(
            "the published head #%(seq)d (%(hash)s) is no longer in the chain: the chain was rewritten"
        ) % {"seq": anchor.seq, "hash": anchor.hash[:16]}
        breaks.append(
            ChainBreak(
                anchor.schema, anchor.table, BreakKind.ANCHOR, message, school, anchor.seq, row and row[0]
            )
        )
    return breaks


def audit_chain_verify(
    *,
    school_code: str | None = None,
    table: str | None = None,
    public_only: bool = False,
    anchors: Sequence[Anchor] = (),
) -> ChainReport:
    """Walk every chosen chain; the first break of each (and every anchor no longer held)."""
    started = time.monotonic()
    chains = chains_for(school_code=school_code, table=table, public_only=public_only)
    report = ChainReport(chains=len(chains))
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for chain in chains:
            rows, broken, trigger = chain_check(chain, cursor=cursor)
            report.rows += rows
            report.breaks += [b for b in (broken, trigger) if b is not None]
        if anchors:
            schools = dict(School.objects.values_list("schema_name", "code"))
            chosen = {(c.schema, c.table) for c in chains}
            report.breaks += anchor_breaks(
                [a for a in anchors if (a.schema, a.table) in chosen], cursor=cursor, schools=schools
            )
    report.seconds = time.monotonic() - started
    return report


def audit_chain_heads() -> list[dict[str, Any]]:
    """Every chain's head (schema, table, seq, hash as hex, when): what to publish as anchors."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schema_name, table_name, seq, encode(hash, 'hex'), updated_at "
            "FROM public.hocba_audit_chain_head ORDER BY schema_name, table_name"
        )
        return [
            {"schema": schema, "table": table, "seq": seq, "hash": digest, "at": at.isoformat()}
            for schema, table, seq, digest, at in cursor.fetchall()
        ]
