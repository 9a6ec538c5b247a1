"""The reference repository's state: one SQLite file in the data directory (`ministry.sqlite3`).

- WAL journal with synchronous=NORMAL: a committed transaction survives a crash of the process
  (not necessarily of the machine), which is the failure the tests inject (`os._exit`).
- A message is committed before its answer is written: an answer lost afterwards (a crash, a
  dropped connection) is answered again from the stored row when the same key comes back.
- Uniqueness is in the schema, not only in code: one row per Idempotency-Key, one row per
  (kind, record_id, version).
- Every connection is opened per operation (SQLite connections are cheap and must not be shared
  between threads); writers serialise on a process lock and BEGIN IMMEDIATE, so another process
  (`python -m reference.ministry school-add`) may write beside a running server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_NAME = "ministry.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT NOT NULL UNIQUE,
    receipt_id       TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('submit', 'replace', 'cancel')),
    school_code      TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    version          INTEGER NOT NULL CHECK (version >= 1),
    replaces_version INTEGER,
    personal_id      TEXT,
    document         BLOB,
    reason           TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'received'
                     CHECK (status IN ('received', 'accepted', 'rejected')),
    reasons          TEXT NOT NULL DEFAULT '[]',
    received_at      TEXT NOT NULL,
    decided_at       TEXT,
    accepted_count   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, record_id, version)
);
CREATE TABLE IF NOT EXISTS schools (
    code     TEXT PRIMARY KEY,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

# The totals GET /_reference/state reports (kept in the database: they survive a crash too).
COUNTERS = ("received", "stored", "replayed", "conflicts", "throttled", "errors_injected", "dropped")

# Columns of a message without its document (the state listing, the validator's queue).
_COLUMNS = (
    "id, key, receipt_id, kind, school_code, record_id, version, replaces_version, personal_id, "
    "reason, status, reasons, received_at, decided_at, accepted_count"
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Message:
    """One stored message (its document is read separately, only by the validator)."""

    id: int
    key: str
    receipt_id: str
    kind: str
    school_code: str
    record_id: str
    version: int
    replaces_version: int | None
    personal_id: str | None
    reason: str
    status: str
    reasons: list[dict[str, str]]
    received_at: str
    decided_at: str | None
    accepted_count: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Message:
        values = dict(row)
        values["reasons"] = json.loads(values["reasons"])
        return cls(**values)

    def receipt(self) -> dict[str, Any]:
        """The body of GET /v1/receipts/<id>."""
        return {
            "receipt_id": self.receipt_id,
            "status": self.status,
            "reasons": self.reasons,
            "decided_at": self.decided_at,
        }

    def listing(self) -> dict[str, Any]:
        """Its entry in GET /_reference/state."""
        return {
            "key": self.key,
            "kind": self.kind,
            "school_code": self.school_code,
            "record_id": self.record_id,
            "version": self.version,
            "replaces_version": self.replaces_version,
            "receipt_id": self.receipt_id,
            "status": self.status,
            "reasons": self.reasons,
            "received_at": self.received_at,
            "decided_at": self.decided_at,
            "accepted_count": self.accepted_count,
        }


@dataclass(frozen=True)
class Envelope:
    """A message as the server checked it, ready to store."""

    key: str
    kind: str
    school_code: str
    record_id: str
    version: int
    replaces_version: int | None
    personal_id: str | None
    document: bytes | None
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What storing an envelope came to: "stored" (new), "replayed" (same key) or "conflict"."""

    result: str
    message: Message | None
    detail: str = ""


class MessageStore:
    """The repository's SQLite file. Thread-safe: a connection per thread (opened once: a
    connection per operation cost more than the write itself), one writer at a time."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.directory / DB_NAME
        self._write_lock = threading.Lock()
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        yield db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on an exception."""
        with self._write_lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int = 1) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def count(self, name: str) -> None:
        """Add one to a counter (received, throttled, errors_injected, dropped)."""
        with self._write() as db:
            self._bump(db, name)

    # --- Messages -------------------------------------------------------------------------

    def put(self, envelope: Envelope) -> Outcome:
        """Store a new message, or find the one this key (or this kind, record, version) names."""
        with self._write() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE key = ?", (envelope.key,)).fetchone()  # noqa: S608 -- constant columns
            if row is not None:
                first = Message.from_row(row)
                same = (first.kind, first.record_id, first.version) == (
                    envelope.kind,
                    envelope.record_id,
                    envelope.version,
                )
                if same:
                    self._bump(db, "replayed")
                    return Outcome("replayed", first)
                self._bump(db, "conflicts")
                detail = (
                    f"This key was received for {first.kind} {first.record_id} v{first.version}, "
                    f"not for {envelope.kind} {envelope.record_id} v{envelope.version}"
                )
                return Outcome("conflict", first, detail)
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE kind = ? AND record_id = ? AND version = ?",  # noqa: S608 -- constant columns
                (envelope.kind, envelope.record_id, envelope.version),
            ).fetchone()
            if row is not None:
                self._bump(db, "conflicts")
                detail = (
                    f"{envelope.kind} {envelope.record_id} v{envelope.version} was received before "
                    "with another Idempotency-Key (other bytes)"
                )
                return Outcome("conflict", Message.from_row(row), detail)
            receipt_id = "rcpt_" + secrets.token_hex(12)
            db.execute(
                "INSERT INTO messages (key, receipt_id, kind, school_code, record_id, version, "
                "replaces_version, personal_id, document, reason, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    envelope.key,
                    receipt_id,
                    envelope.kind,
                    envelope.school_code,
                    envelope.record_id,
                    envelope.version,
                    envelope.replaces_version,
                    envelope.personal_id,
                    envelope.document,
                    envelope.reason,
                    now_iso(),
                ),
            )
            self._bump(db, "stored")
            row = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE key = ?", (envelope.key,)).fetchone()  # noqa: S608 -- constant columns
            return Outcome("stored", Message.from_row(row))

    def by_receipt(self, receipt_id: str) -> Message | None:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE receipt_id = ?",  # noqa: S608 -- constant columns
                (receipt_id,),
            ).fetchone()
        return Message.from_row(row) if row is not None else None

    def pending(self) -> list[Message]:
        """The messages not judged yet, in the order they were received."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE status = 'received' ORDER BY id"  # noqa: S608 -- constant columns
            ).fetchall()
        return [Message.from_row(row) for row in rows]

    def document(self, message_id: int) -> bytes | None:
        with self._connect() as db:
            row = db.execute("SELECT document FROM messages WHERE id = ?", (message_id,)).fetchone()
        return bytes(row["document"]) if row is not None and row["document"] is not None else None

    def version_status(self, record_id: str, version: int) -> str | None:
        """The best status of a submit/replace of this record version: accepted, received,
        rejected, or None when no such version was ever received."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT status FROM messages WHERE kind IN ('submit', 'replace') "
                "AND record_id = ? AND version = ?",
                (record_id, version),
            ).fetchall()
        statuses = {row["status"] for row in rows}
        for status in ("accepted", "received", "rejected"):
            if status in statuses:
                return status
        return None

    def version_school(self, record_id: str, version: int) -> str | None:
        """The school code of the accepted submit/replace of this record version."""
        with self._connect() as db:
            row = db.execute(
                "SELECT school_code FROM messages WHERE kind IN ('submit', 'replace') "
                "AND record_id = ? AND version = ? AND status = 'accepted'",
                (record_id, version),
            ).fetchone()
        return row["school_code"] if row is not None else None

    def decide(self, message_id: int, status: str, reasons: list[dict[str, str]]) -> bool:
        """Record the verdict of a message still `received`; False if it already had one."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE messages SET status = ?, reasons = ?, decided_at = ?, "
                "accepted_count = accepted_count + ? WHERE id = ? AND status = 'received'",
                (
                    status,
                    json.dumps(reasons, ensure_ascii=False),
                    now_iso(),
                    int(status == "accepted"),
                    message_id,
                ),
            ).rowcount
        return changed == 1

    # --- Schools --------------------------------------------------------------------------

    def schools_add(self, codes: list[str]) -> list[str]:
        """Register school codes (registering one twice is harmless); all codes registered."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO schools (code, added_at) VALUES (?, ?) ON CONFLICT (code) DO NOTHING",
                [(code, now_iso()) for code in codes],
            )
        return self.schools()

    def schools(self) -> list[str]:
        with self._connect() as db:
            return [row["code"] for row in db.execute("SELECT code FROM schools ORDER BY code")]

    def school_registered(self, code: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM schools WHERE code = ?", (code,)).fetchone() is not None

    # --- State ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self._connect() as db:
            db.execute("BEGIN")  # one snapshot for the counters and the messages
            try:
                counters = {
                    row["name"]: row["value"] for row in db.execute("SELECT name, value FROM counters")
                }
                rows = db.execute(f"SELECT {_COLUMNS} FROM messages ORDER BY id").fetchall()  # noqa: S608 -- constant columns
                schools = [row["code"] for row in db.execute("SELECT code FROM schools ORDER BY code")]
            finally:
                db.execute("COMMIT")  # the thread's connection is reused: never leave it in a transaction
        messages = [Message.from_row(row).listing() for row in rows]
        return {
            "totals": {name: counters.get(name, 0) for name in COUNTERS},
            "held": len(messages),
            "by_status": {
                status: sum(1 for m in messages if m["status"] == status)
                for status in ("received", "accepted", "rejected")
            },
            "messages": messages,
            "schools": schools,
        }
