"""Year record PDFs in PostgreSQL (bytea, before issue 15) or in the documents storage (after):
store and read time per document, and the database's size per 1,000 records.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/documents.py \\
        [--documents 1000] [--size 44032] [--pdf some.pdf] [--runs 3]

Independent of the portal's code (it runs the same on the commit before the change): a scratch
schema in DATABASE_URL's database holds two tables shaped as transcripts_yearrecordpdf was and
is, and a temporary directory is the filesystem storage (Django's FileSystemStorage, as
STORAGES["documents"] is by default). Each document is stored in its own transaction, as a render
stores its PDF:

- before: INSERT of the row with the bytes (bytea) and their SHA-256; read: SELECT the bytes;
- after: the object written once (exists? then save, as transcripts.records.storage.document_put)
  and the row (name, size, SHA-256) inserted; read: SELECT name and SHA-256, read the object and
  check its SHA-256 (document_get).

The documents are --pdf's bytes (each made unique by a trailing comment) or, by default, random
bytes of --size (43 KiB: the primary record's PDF; a PDF's streams are Flate-compressed, so
PostgreSQL's TOAST compression gains little on either). Printed: ms per document stored and read
(median of --runs), and the tables' total size (heap + TOAST + indexes) per 1,000 records.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def documents(count: int, size: int, sample: bytes | None) -> list[bytes]:
    if sample is not None:
        return [sample + f"\n% bench {i}\n".encode() for i in range(count)]
    return [b"%PDF-1.7\n" + os.urandom(size - 9) for _ in range(count)]


def bench_bytea(conn: psycopg.Connection, docs: list[bytes]) -> tuple[float, float, int]:
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pdf_old")
        cur.execute(
            "CREATE TABLE pdf_old (id bigserial PRIMARY KEY, record_id bigint UNIQUE NOT NULL, "
            "pdf bytea NOT NULL, sha256 varchar(64) NOT NULL)"
        )
    started = time.perf_counter()
    for i, data in enumerate(docs):
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO pdf_old (record_id, pdf, sha256) VALUES (%s, %s, %s)",
                [i, data, hashlib.sha256(data).hexdigest()],
            )
    stored = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(len(docs)):
        with conn.cursor() as cur:
            cur.execute("SELECT pdf FROM pdf_old WHERE record_id = %s", [i])
            (data,) = cur.fetchone()
            assert len(bytes(data)) > 0
    read = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE pdf_old")
        cur.execute("SELECT pg_total_relation_size('pdf_old')")
        (total,) = cur.fetchone()
    return stored, read, total


def bench_storage(conn: psycopg.Connection, docs: list[bytes], location: str) -> tuple[float, float, int]:
    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage

    storage = FileSystemStorage(
        location=location, file_permissions_mode=0o640, directory_permissions_mode=0o750
    )
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pdf_new")
        cur.execute(
            "CREATE TABLE pdf_new (id bigserial PRIMARY KEY, record_id bigint UNIQUE NOT NULL, "
            "name varchar(255) UNIQUE NOT NULL, size integer NOT NULL, sha256 varchar(64) NOT NULL)"
        )
    started = time.perf_counter()
    for i, data in enumerate(docs):
        sha256 = hashlib.sha256(data).hexdigest()
        name = f"bench_school/bench.HS-{i}.2025-2026/v1/{sha256}.pdf"
        with conn.transaction(), conn.cursor() as cur:
            if not storage.exists(name):
                saved = storage.save(name, ContentFile(data, name=name))
                assert saved == name
            cur.execute(
                "INSERT INTO pdf_new (record_id, name, size, sha256) VALUES (%s, %s, %s, %s)",
                [i, name, len(data), sha256],
            )
    stored = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(len(docs)):
        with conn.cursor() as cur:
            cur.execute("SELECT name, sha256 FROM pdf_new WHERE record_id = %s", [i])
            name, sha256 = cur.fetchone()
        with storage.open(name, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise SystemExit(f"{name}: the stored bytes do not match")
    read = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE pdf_new")
        cur.execute("SELECT pg_total_relation_size('pdf_new')")
        (total,) = cur.fetchone()
    return stored, read, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--size", type=int, default=44_032, help="bytes per document (default 43 KiB)")
    parser.add_argument("--pdf", type=Path, help="a real PDF to store (each copy made unique)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from django.conf import settings

    settings.configure()  # FileSystemStorage needs settings; nothing else of the portal is used
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    sample = args.pdf.read_bytes() if args.pdf else None
    docs = documents(args.documents, args.size, sample)
    size = statistics.mean(len(d) for d in docs)
    schema = f"bench_documents_{os.getpid()}"
    results: dict[str, list[tuple[float, float, int]]] = {"bytea": [], "storage": []}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        try:
            for run in range(1, args.runs + 1):
                progress(f"run {run}/{args.runs}: {len(docs)} documents of {size / 1024:.1f} KiB")
                results["bytea"].append(bench_bytea(conn, docs))
                location = tempfile.mkdtemp(prefix="hocba-bench-documents-")
                try:
                    results["storage"].append(bench_storage(conn, docs, location))
                finally:
                    shutil.rmtree(location, ignore_errors=True)
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    n = len(docs)
    source = f"--pdf {args.pdf}" if args.pdf else "random bytes"
    print(f"documents: {n} of {size / 1024:.1f} KiB ({source})")
    print(f"{'path':<34} {'store ms/doc':>12} {'read ms/doc':>12} {'DB MiB per 1,000':>17}")
    figures = {}
    for key, label in (
        ("bytea", "PostgreSQL bytea (before)"),
        ("storage", "filesystem storage + row (after)"),
    ):
        store = statistics.median(r[0] for r in results[key]) / n * 1000
        read = statistics.median(r[1] for r in results[key]) / n * 1000
        db = statistics.median(r[2] for r in results[key]) / n * 1000 / 2**20
        figures[key] = (store, read, db)
        print(f"{label:<34} {store:>12.3f} {read:>12.3f} {db:>17.2f}")
    (bs, br, bd), (ss, sr, sd) = figures["bytea"], figures["storage"]
    print(
        f"after / before: store {ss / bs:.2f}x, read {sr / br:.2f}x; database size per 1,000 records "
        f"{bd:.2f} -> {sd:.2f} MiB (saved {bd - sd:.2f} MiB; per 2.5 M records a year: "
        f"{(bd - sd) * 2500 / 1024:.1f} GiB)"
    )


if __name__ == "__main__":
    main()
