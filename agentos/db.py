"""Prepared statements for the statements that run on every step.

Django's PostgreSQL backend binds parameters on the client (each value is quoted into the
SQL text in Python) and never prepares. For the one statement every committed step runs,
both cost: quoting a step's JSON in Python, and planning the statement each time.
``prepared_cursor()`` is a Django cursor (its errors are Django's, query logging and
execute wrappers see it) whose statements are sent with server-side binding and prepared
on first use, per connection; psycopg keeps up to 100 per connection.

Parameters are then typed by PostgreSQL, not by their text: a value in a SELECT list
needs an explicit cast (``%s::jsonb``). Prepared statements do not survive a
transaction-mode connection pooler such as PgBouncer < 1.21; AgentOS connects directly.
"""

from __future__ import annotations

import select
import time
import weakref
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.backends.postgresql.base import ServerBindingCursor

PREPARE_THRESHOLD = 5  # psycopg's default; prepare=True below prepares on first use anyway


class _PreparingCursor(ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor():
    """A cursor on the default connection that prepares every statement it runs."""
    connection.ensure_connection()
    raw_connection = connection.connection
    if raw_connection.prepare_threshold is None:
        # Django turns psycopg's prepared statements off (prepare_threshold None), which
        # also ignores prepare=True. Django's own cursors bind on the client and never
        # prepare whatever the threshold, so this affects this module's cursors only.
        raw_connection.prepare_threshold = PREPARE_THRESHOLD
    with connection.wrap_database_errors:
        raw = _PreparingCursor(raw_connection)
    return connection._prepare_cursor(raw)


def _wait(fd: int, event: int) -> None:
    poller = select.poll()  # not select.select: a worker's descriptors can exceed FD_SETSIZE
    poller.register(fd, event)
    poller.poll()


PREPARED_MAX = 64  # statements InFlight prepares per connection
_TRANSFORMERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # psycopg connection -> (Transformer, encoding)
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # psycopg connection -> {(sql, types): name}


def _numbered(sql: str) -> str:
    """``%s`` placeholders as PostgreSQL's ``$1, $2, ...`` (``%%`` is a literal ``%``)."""
    parts = sql.split("%s")
    text = parts[0]
    for number, part in enumerate(parts[1:], start=1):
        text += f"${number}{part}"
    return text.replace("%%", "%")


class InFlight:
    """A statement for this thread's connection, sent now or later, whose result is read later.

    ``prepare()`` converts its values (JSON is serialised here) and sends nothing; the
    connection stays free. ``send()`` writes it and returns at once; PostgreSQL executes
    and commits it (autocommit: one implicit transaction) while the caller goes on with
    work that needs no database. ``wait()`` waits for the reply, optionally for something
    else at the same time; ``result()`` waits for the reply without holding the GIL and
    returns the first row (typed as a Django cursor's), raising Django's database errors.
    From ``send()`` until ``result()`` has returned, the connection must not be used for
    anything else: callers settle it before their next query (see the runner's execute
    wrapper). Execute wrappers do not see the statement;
    Django's query log does (when it is on), with the time from send to result.

    Like ``prepared_cursor``, the statement is prepared on first use per connection
    (named ``agentos_<n>``; the first use waits for the PREPARE) and its values are bound
    on the server, so a step's JSON is never quoted into SQL text. Placeholders are ``%s``.
    """

    def __init__(self, db, sql: str, params: list) -> None:
        from psycopg.adapt import PyFormat, Transformer

        self.db, self.sql = db, sql
        raw = db.connection
        self.raw, self.pgconn = raw, raw.pgconn
        with db.wrap_database_errors:
            # One per connection, as a psycopg cursor keeps one for all its statements
            # (with the connection's encoding, which psycopg looks up on every read).
            cached = _TRANSFORMERS.get(raw)
            if cached is None:
                cached = _TRANSFORMERS[raw] = (Transformer(raw), raw.info.encoding)
            transformer, self.encoding = cached
            self.values = transformer.dump_sequence(params, [PyFormat.AUTO] * len(params))
            self.types, self.formats = tuple(transformer.types), tuple(transformer.formats)
        self.sent = self.done = False

    def send(self, replace: dict[int, Any] | None = None) -> InFlight:
        """Write the statement (once) and return at once. ``replace``: new values for some
        parameters (by position), of the types they were prepared with, e.g. a timestamp
        taken at the last moment."""
        from psycopg.adapt import PyFormat

        if self.sent:
            raise RuntimeError("this statement was already sent")
        with self.db.wrap_database_errors:
            if replace:
                transformer = _TRANSFORMERS[self.raw][0]
                for position, value in replace.items():
                    self.values[position] = transformer.get_dumper(value, PyFormat.AUTO).dump(value)
            self.started = time.perf_counter()
            self._send()
        self.sent = True
        return self

    def wait(self, until=None) -> bool:
        """Wait for the reply without reading it: True once it has arrived. ``until`` (an
        object with ``fileno()``, readable when something else may have finished, and
        ``done()``): return False as soon as ``until.done()`` while the reply is still on
        its way."""
        import psycopg

        pgconn = self.pgconn
        poller = None
        while True:
            try:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    return True
            except psycopg.Error:  # a broken connection: result() raises it
                return True
            if until is None:
                _wait(pgconn.socket, select.POLLIN)
                continue
            if until.done():
                return False
            if poller is None:
                poller = select.poll()
                poller.register(pgconn.socket, select.POLLIN)
                poller.register(until.fileno(), select.POLLIN)
            poller.poll()

    def _send(self) -> None:
        # Keyed by the parameter types too (psycopg dumps 1 as int2 and 40000 as int4, and a
        # prepared statement keeps the types it was prepared with), as psycopg's own cache is.
        names = _PREPARED.setdefault(self.raw, {})
        key = (self.sql, tuple(self.types))
        name = names.get(key)
        if name is None and len(names) < PREPARED_MAX:
            name = f"agentos_{len(names)}"
            self._check(self.pgconn.prepare(name.encode(), _numbered(self.sql).encode(self.encoding), self.types))
            names[key] = name
        if name is None:  # past the cap: bound on the server, planned each time
            self.pgconn.send_query_params(_numbered(self.sql).encode(self.encoding), self.values,
                                          param_types=self.types, param_formats=self.formats)
        else:
            self.pgconn.send_query_prepared(name.encode(), self.values, param_formats=self.formats)
        while self.pgconn.flush():  # nonblocking connection: wait until it is all written
            _wait(self.pgconn.socket, select.POLLOUT)

    def _check(self, res) -> None:
        import psycopg
        from psycopg import pq

        if res.status == pq.ExecStatus.FATAL_ERROR:
            sqlstate = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
            message = res.get_error_message(self.encoding)
            raise psycopg.errors.lookup(sqlstate)(message) if sqlstate else psycopg.DatabaseError(message)

    def _receive(self) -> list:
        # A broken connection raises psycopg.OperationalError here (Django's, through
        # wrap_database_errors in result()).
        pgconn = self.pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn.socket, select.POLLIN)  # releases the GIL while waiting
            pgconn.consume_input()
        results = []
        while (res := pgconn.get_result()) is not None:
            results.append(res)
        return results

    def result(self) -> tuple | None:
        """The statement's first row, or None when it returned no row."""
        import psycopg

        if not self.sent:
            raise RuntimeError("this statement was not sent")
        if self.done:
            raise RuntimeError("the result of this statement was already read")
        self.done = True
        with self.db.wrap_database_errors:
            results = self._receive()
            try:
                for res in results:
                    self._check(res)
            except psycopg.errors.InvalidSqlStatementName:
                # psycopg runs DEALLOCATE ALL after a rollback on a connection where it
                # prepared statements itself: the statement did not run; prepare it again.
                _PREPARED.pop(self.raw, None)
                self._send()
                results = self._receive()
                for res in results:
                    self._check(res)
        if self.db.queries_logged:
            self.db.queries_log.append({"sql": self.sql, "time": f"{time.perf_counter() - self.started:.3f}"})
        last = results[-1] if results else None
        if last is None or last.ntuples == 0:
            return None
        # Typed like a cursor's row, by the connection's loaders.
        transformer = _TRANSFORMERS[self.raw][0]
        transformer.set_pgresult(last)
        return transformer.load_row(0, tuple)


class _Immediate:
    """A statement inside a transaction, where it commits nothing by itself: it runs when
    sent (in a savepoint); its row or its error, later."""

    def __init__(self, sql: str, params: list) -> None:
        self.sql, self.params = sql, list(params)
        self.row, self.error = None, None

    def send(self, replace: dict[int, Any] | None = None) -> _Immediate:
        for position, value in (replace or {}).items():
            self.params[position] = value
        try:
            # A savepoint: an error leaves the caller's transaction usable, as a failed
            # statement in flight leaves the connection.
            with transaction.atomic(), prepared_cursor() as cursor:
                cursor.execute(self.sql, self.params)
                self.row = cursor.fetchone()
        except DatabaseError as error:
            self.error = error
        return self

    def wait(self, until=None) -> bool:
        return True

    def result(self) -> tuple | None:
        if self.error is not None:
            raise self.error
        return self.row


def prepare(sql: str, params: list, db=None) -> InFlight | _Immediate:
    """``sql`` with its values converted for this thread's connection, ready to ``send()``
    (see InFlight): the costly part of a statement, done before the moment it may be sent.
    Inside a transaction, the statement runs when sent (a prepared statement) and
    ``result()`` returns its row or raises its error, the same way. ``db``: this thread's
    default connection, when the caller has it at hand."""
    db = db or connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    if db.in_atomic_block or not db.get_autocommit():
        return _Immediate(sql, params)
    return InFlight(db, sql, params)


def send(sql: str, params: list) -> InFlight | _Immediate:
    """Send ``sql`` on this thread's connection and return without waiting (see InFlight)."""
    return prepare(sql, params).send()
