"""django-tenants' PostgreSQL backend, with `SET search_path` issued only when it changes.

django-tenants sends `SET search_path` before every statement (a round trip each: a grade book
page issued 8 statements and 8 SETs). Its own shortcut, TENANT_LIMIT_SET_CALLS, trusts a flag
that PostgreSQL can silently make false. This backend skips the SET only when it can prove that
the connection's search_path is already the one wanted (docs/architecture.md, "search_path: one
SET when it changes").

The facts it relies on, all of PostgreSQL's session settings (`SET` without LOCAL):
- a SET made outside a transaction block (autocommit) is committed at once, and stays until
  another SET, RESET or DISCARD on the same session, or the session ends;
- a SET made inside a transaction stays after COMMIT, and is undone by ROLLBACK (back to the
  value at BEGIN) and by ROLLBACK TO SAVEPOINT of a savepoint made before it;
- COMMIT of a transaction in the failed state is a ROLLBACK.

So two values are remembered, for the one raw connection they were set on:
- `_path_session`: the search_path committed on the session (None: unknown);
- `_path_transaction`: set inside the open transaction and not yet committed (None: no SET in
  this transaction, so the session's value applies; UNKNOWN: a savepoint rollback or a failure
  left it in doubt).
A SET in autocommit updates the first; a SET inside a transaction the second, which a successful
COMMIT (of a transaction not in error) moves to the first and ROLLBACK discards. Anything we
cannot see through (a transaction found ended that we did not end, a statement mentioning
search_path that is not ours, a failure of COMMIT or ROLLBACK, a new or closed connection)
makes both unknown, and the next cursor issues the SET again.

`SET LOCAL` would not help: in autocommit (how the portal runs outside `atomic`) every
statement is its own transaction, so a SET LOCAL would have to precede every statement again.
"""

from __future__ import annotations

from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql.base import CursorDebugWrapper as PostgresCursorDebugWrapper
from django.db.backends.utils import CursorWrapper
from django.db.utils import DatabaseError
from django_tenants.postgresql_backend import base as tenants_base
from django_tenants.utils import quote_schema_name
from psycopg.pq import TransactionStatus

# Statements that may change the session's search_path behind our back, lower-cased: any
# mention of it (SET / RESET / set_config), its alias `SET SCHEMA`, resetting everything, and
# django-tenants' clone_schema() function (which sets it and restores it internally).
_PATH_CHANGERS: Final = ("search_path", "set schema", "reset all", "discard all", "clone_schema")


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


class _WatchStatements:
    """Forgets the remembered search_path after any statement that may change it (other than the
    backend's own SET): django-tenants' introspection sets and restores it, for instance."""

    db: DatabaseWrapper

    def execute(self, sql: Any, params: Any = None) -> Any:
        try:
            return super().execute(sql, params)  # type: ignore[misc]
        finally:
            self.db.search_path_statement_seen(sql)

    def executemany(self, sql: Any, param_list: Any) -> Any:
        try:
            return super().executemany(sql, param_list)  # type: ignore[misc]
        finally:
            self.db.search_path_statement_seen(sql)


class WatchedCursorWrapper(_WatchStatements, CursorWrapper):
    pass


class WatchedCursorDebugWrapper(_WatchStatements, PostgresCursorDebugWrapper):
    pass


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    """django-tenants' connection; `SET search_path` only when the wanted path differs from the
    one provably in effect (see the module's docstring)."""

    # Set by django-tenants' __init__; typed here.
    _setting_search_path: bool
    search_path_set_schemas: list[str] | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._path_connection: Any = None  # the raw connection the two values below describe
        self._path_session: tuple[str, ...] | None = None
        self._path_transaction: tuple[str, ...] | _Unknown | None = None
        self._wanted_key: tuple[str, bool] | None = None
        self._wanted: tuple[str, ...] = ()
        # Counted for tests and benches: how many SETs this connection skipped and issued.
        self.search_path_sets = 0
        self.search_path_skips = 0
        super().__init__(*args, **kwargs)

    # --- What is in effect ----------------------------------------------------------------

    def search_path_forget(self) -> None:
        """The search_path in effect is unknown: the next cursor sets it."""
        self._path_connection = None
        self._path_session = None
        self._path_transaction = None
        self.search_path_set_schemas = None

    def search_path_in_effect(self) -> tuple[str, ...] | None:
        """The search_path this connection provably has now, or None when it is not known."""
        connection = self.connection
        if connection is None or connection is not self._path_connection:
            return None
        status = connection.info.transaction_status
        if status == TransactionStatus.IDLE and self._path_transaction is not None:
            # A transaction we saw set the path has ended without passing through _commit or
            # _rollback (a raw COMMIT or ROLLBACK): whether the SET survived is unknown.
            self.search_path_forget()
            return None
        if status not in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
            return None  # in error (the SET would fail anyway), mid-statement, or broken
        current = self._path_session if self._path_transaction is None else self._path_transaction
        return current if isinstance(current, tuple) else None

    def search_path_statement_seen(self, sql: Any) -> None:
        """Called after every statement run through Django's cursor wrapper."""
        if self._setting_search_path:
            return  # our own SET
        if not isinstance(sql, str):
            self.search_path_forget()  # a composed statement: not looked into, rare
            return
        lowered = sql.lower()
        if any(changer in lowered for changer in _PATH_CHANGERS):
            self.search_path_forget()

    def _wanted_search_path(self) -> tuple[str, ...]:
        key = (self.schema_name, self.include_public_schema)
        if key != self._wanted_key:
            # django-tenants' own rules (public alone; the school then public; extra paths),
            # every part validated; kept for as long as the schema does not change.
            self._wanted = tuple(self._get_cursor_search_paths())
            self._wanted_key = key
        return self._wanted

    # --- Setting it -----------------------------------------------------------------------

    def _handle_search_path(self, cursor: Any = None) -> None:
        """Issue `SET search_path` unless the wanted one is provably in effect already."""
        if self._setting_search_path:
            return  # re-entered while obtaining a cursor for the SET
        if not self.schema_name:
            raise ImproperlyConfigured(
                "Database schema not set. Did you forget to call set_schema() or set_tenant()?"
            )
        wanted = self._wanted_search_path()
        if self.search_path_in_effect() == wanted:
            self.search_path_skips += 1
            return

        connection = self.connection
        status = connection.info.transaction_status
        if status == TransactionStatus.INERROR:
            # A failed transaction refuses every statement but a rollback: a SET would fail (a
            # wasted round trip) and the statement after it fails with or without it, while a
            # ROLLBACK TO SAVEPOINT needs none. What the path is afterwards is settled by
            # _rollback / _savepoint_rollback.
            return
        # Read before the SET: in autocommit, outside a transaction block, the SET commits at
        # once; otherwise it belongs to the open (or implicitly begun) transaction.
        committed_at_once = connection.autocommit and status == TransactionStatus.IDLE
        if connection is not self._path_connection:
            self.search_path_forget()
            self._path_connection = connection
        self._setting_search_path = True
        cursor_for_set = connection.cursor() if cursor is None else cursor
        try:
            cursor_for_set.execute("SET search_path = " + ",".join(quote_schema_name(s) for s in wanted))
        except (DatabaseError, tenants_base.psycopg.Error):
            # As django-tenants: in a failed transaction the SET fails, and so will the statement
            # it preceded; nothing is known about the path until the rollback.
            if committed_at_once:
                self._path_session = None
            else:
                self._path_transaction = UNKNOWN
        else:
            self.search_path_sets += 1
            if committed_at_once:
                self._path_session = wanted
                self._path_transaction = None
            else:
                self._path_transaction = wanted
        finally:
            self._setting_search_path = False
            if cursor is None:
                cursor_for_set.close()
        self.search_path_set_schemas = list(wanted) if self.search_path_in_effect() == wanted else None

    # --- Transactions end -----------------------------------------------------------------

    def _commit(self) -> Any:
        connection = self.connection
        failed = connection is not None and connection.info.transaction_status == TransactionStatus.INERROR
        try:
            result = super()._commit()
        except BaseException:
            self.search_path_forget()  # rolled back, or the connection is gone: in doubt
            raise
        if not failed:  # COMMIT of a failed transaction is a ROLLBACK: the session keeps its value
            if self._path_transaction is UNKNOWN:
                self._path_session = None
            elif self._path_transaction is not None:
                self._path_session = self._path_transaction  # type: ignore[assignment]
        self._path_transaction = None
        return result

    def _rollback(self) -> Any:
        try:
            result = super()._rollback()
        except BaseException:
            self.search_path_forget()
            raise
        self._path_transaction = None  # undone: back to the session's committed value
        return result

    def _savepoint_rollback(self, sid: str) -> None:
        try:
            super()._savepoint_rollback(sid)
        finally:
            # A SET made after the savepoint is undone, one made before it is not: which one the
            # transaction holds now is not tracked, so it is unknown (the next cursor sets it).
            # Without a SET in this transaction the session's value holds and nothing changes.
            if self._path_transaction is not None:
                self._path_transaction = UNKNOWN

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.search_path_forget()

    # --- Cursors that watch for statements changing the path ------------------------------

    def make_cursor(self, cursor: Any) -> CursorWrapper:
        return WatchedCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> CursorWrapper:
        return WatchedCursorDebugWrapper(cursor, self)
