"""What the benchmarks share: a throwaway database on the server of DATABASE_URL, and timing.

The database named in DATABASE_URL is never opened: each run creates `hocba_bench_<pid>` on the
same server, points Django at it, and drops it at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config.env import database_from_url  # noqa: E402 - needs ROOT on sys.path; imports no settings


def admin_connect(url: str):
    """A psycopg connection to the server's maintenance database (never the one in the URL)."""
    import psycopg

    db = database_from_url(url)
    params = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        **db["OPTIONS"],
    }
    params = {k: v for k, v in params.items() if v is not None}
    last_error: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            return psycopg.connect(dbname=maintenance, autocommit=True, **params)
        except psycopg.OperationalError as exc:
            last_error = exc
    raise SystemExit(f"Cannot connect to the PostgreSQL server of DATABASE_URL: {last_error}")


def url_with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def database_create(url: str, name: str) -> str:
    """Create the bench database; return the server version."""
    with admin_connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(f'CREATE DATABASE "{name}"')
    return version


def database_drop(url: str, name: str) -> None:
    assert name.startswith("hocba_bench_"), name
    with admin_connect(url) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def cache_keys_delete(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def _django_on(database_url: str, redis_url: str, prefix: str, *, shared_only: bool) -> None:
    """Django set up on `database_url`, its schemas migrated (only public with `shared_only`)."""
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        HOCBA_CACHE_PREFIX=prefix,
        DJANGO_SETTINGS_MODULE="config.settings",
        HOCBA_TESTING="1",
        # A developer's environment must not change the figures.
        DJANGO_DEBUG="0",
    )
    os.environ.pop("EXECUTOR", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", shared=shared_only, interactive=False, verbosity=0)


@contextlib.contextmanager
def throwaway_django() -> Iterator[str]:
    """Django set up on a fresh database of its own (public and template schemas migrated).

    Yields the server's version. Everything is dropped on exit.
    """
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    name = f"hocba_bench_{os.getpid()}"
    prefix = f"hocba-bench-{os.getpid()}"
    version = database_create(url, name)
    try:
        _django_on(url_with_database(url, name), redis_url, prefix, shared_only=False)
        yield version
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        database_drop(url, name)
        with contextlib.suppress(Exception):
            cache_keys_delete(redis_url, prefix)


@contextlib.contextmanager
def bench_django(
    name: str,
    *,
    fresh: bool,
    stale: Callable[[str], bool] | None = None,
    shared_only: bool = False,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Iterator[str]:
    """Django set up on a bench's own database `name` (created when missing, kept after), its
    schemas migrated (only public with `shared_only`); yields the server's version. `fresh`: drop
    it first; `stale(url)`: whether the database holds another data set than the bench's (then it
    is dropped and made again: it is the bench's own). The bench's cache keys are cleared before
    and after."""
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/hocba")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"hocba-bench-{name}"
    with admin_connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not fresh and stale is not None and stale(url_with_database(url, name)):
            say(f"database {name} holds another data set (or none): making it again")
            fresh = True
        if exists and fresh:
            say(f"dropping database {name}")
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            say(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')
    # Cached routes and access from an earlier data set must not answer for this one.
    cache_keys_delete(redis_url, prefix)
    _django_on(url_with_database(url, name), redis_url, prefix, shared_only=shared_only)
    try:
        yield version
    finally:
        from django.db import connections

        connections.close_all()
        cache_keys_delete(redis_url, prefix)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary_ms(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:6.1f} ms   p95 {percentile(values, 0.95) * 1000:6.1f} ms"
    )
