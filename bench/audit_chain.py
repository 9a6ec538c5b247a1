"""The audit chain's cost on a cell save's audit row, and the check's speed.

    DATABASE_URL=... .venv/bin/python bench/audit_chain.py [--seconds S] [--rows N]

Runs in a throwaway database (bench/support.py) holding only the chain's SQL (portal migration
0021, the very text) and, in 8 schemas, two copies of transcripts_assessmentchange's columns: one
plain, one with the chain trigger (zz_audit_chain), as transcripts 0017 makes it.

Inserts per second, each insert its own transaction as a cell save's audit row is (the chain's
head row stays locked until the commit), for S seconds per case, plain and chained measured turn
and turn about in the same run:
- 1 writer;
- 8 writers in one school (one chain: they queue on its head row);
- 8 writers in 8 schools (8 chains: they do not wait for each other).
Then the check: N rows chained by one INSERT ... SELECT (the trigger per row), and the check's walk
(portal.audit_chain's statement) over them: rows per second.

The figures are the machine's at the time (2 shared cores here): read the ratios, chained to plain
in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import database_create, database_drop, url_with_database

SCHOOLS = 8
TABLE = """
CREATE TABLE {schema}.{name} (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id bigint NOT NULL,
    enrolment_id bigint NOT NULL,
    subject_id bigint,
    "table" varchar(40) NOT NULL,
    row_id bigint NOT NULL,
    field varchar(40) NOT NULL,
    old text NOT NULL,
    new text NOT NULL,
    chain_seq bigint,
    chain_hash bytea
);
CREATE INDEX ON {schema}.{name} (at);
"""
CHAINED = """
CREATE TRIGGER zz_audit_chain BEFORE INSERT ON {schema}.{name}
    FOR EACH ROW EXECUTE FUNCTION public.hocba_audit_chain();
CREATE CONSTRAINT TRIGGER zz_audit_chain_head AFTER INSERT ON {schema}.{name}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.hocba_audit_chain_flush();
CREATE UNIQUE INDEX ON {schema}.{name} (chain_seq);
"""
INSERT = (
    'INSERT INTO {schema}.{name} (actor_id, enrolment_id, subject_id, "table", row_id, field, old, new) '
    "VALUES (7, %s, 3, 'subjecttermscores', %s, 'end', '7,0', '8,5')"
)


def _setup(conn) -> None:
    migration = importlib.import_module("portal.migrations.0021_audit_chain")
    conn.execute(migration.FUNCTIONS)
    for n in range(SCHOOLS):
        conn.execute(f"CREATE SCHEMA s{n}")
        conn.execute(TABLE.format(schema=f"s{n}", name="plain"))
        conn.execute(TABLE.format(schema=f"s{n}", name="chained"))
        conn.execute(CHAINED.format(schema=f"s{n}", name="chained"))


def _rate(dsn: str, name: str, schemas: list[str], seconds: float) -> float:
    """Inserts per second by len(schemas) writers, one connection each, one insert per transaction."""
    import psycopg

    counts = [0] * len(schemas)
    start = threading.Barrier(len(schemas) + 1)
    deadline: list[float] = []

    def writer(i: int, schema: str) -> None:
        with psycopg.connect(dsn) as conn:
            sql = INSERT.format(schema=schema, name=name)
            start.wait()
            n = 0
            while time.perf_counter() < deadline[0]:
                conn.execute(sql, [i, n])
                conn.commit()
                n += 1
            counts[i] = n

    threads = [threading.Thread(target=writer, args=(i, s)) for i, s in enumerate(schemas)]
    for thread in threads:
        thread.start()
    deadline.append(time.perf_counter() + seconds)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per case and mode (3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, plain and chained alternating (2)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the chain checked (100,000)")
    args = parser.parse_args()

    import psycopg

    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    db = f"hocba_bench_{os.getpid()}"
    version = database_create(url, db)
    bench_url = url_with_database(url, db)
    try:
        with psycopg.connect(bench_url, autocommit=True) as conn:
            _setup(conn)
        print(
            f"PostgreSQL {version}, {os.cpu_count()} CPUs, {args.seconds:g} s per case, {args.rounds} rounds"
        )
        cases = {
            "1 writer": ["s0"],
            "8 writers, 1 school": ["s1"] * 8,
            "8 writers, 8 schools": [f"s{n}" for n in range(SCHOOLS)],
        }
        for label, schemas in cases.items():
            rates: dict[str, list[float]] = {"plain": [], "chained": []}
            for _round in range(args.rounds):
                for name in ("plain", "chained"):
                    rates[name].append(_rate(bench_url, name, schemas, args.seconds))
            plain = max(rates["plain"])
            chained = max(rates["chained"])
            print(
                f"{label:22} plain {plain:8.0f}/s  chained {chained:8.0f}/s  "
                f"chained/plain {chained / plain:5.2f}  (best of {args.rounds})"
            )

        with psycopg.connect(bench_url, autocommit=True) as conn:
            sql = (
                'INSERT INTO s7.chained (actor_id, enrolment_id, subject_id, "table", row_id, field, old, '
                "new) SELECT 7, g, 3, 'subjecttermscores', g, 'end', '7,0', (g %% 10)::text "
                "FROM generate_series(1, %s) g"
            )
            began = time.perf_counter()
            conn.execute(sql, [args.rows])
            chain_seconds = time.perf_counter() - began
            conn.execute("VACUUM ANALYZE s7.chained")
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
            os.environ.setdefault("HOCBA_TESTING", "1")
            import django

            django.setup()
            from portal.audit_chain import WALK_SQL

            began = time.perf_counter()
            row = conn.execute(WALK_SQL.format(table="s7.chained"), ["s7", "chained"]).fetchone()
            walk_seconds = time.perf_counter() - began
            checked = row[0]
            assert row[0] >= args.rows and row[3] is None and row[5] == row[0], row  # intact
        print(
            f"{args.rows} rows chained by one INSERT: {args.rows / chain_seconds:,.0f} rows/s; "
            f"the check: {checked / walk_seconds:,.0f} rows/s ({checked} rows, {walk_seconds:.2f} s, intact)"
        )
    finally:
        database_drop(url, db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
