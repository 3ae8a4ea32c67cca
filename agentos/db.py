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

from django.db import connection
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


class InFlight:
    """A statement sent on this thread's connection whose result is read later.

    ``send()`` writes the statement (parameters bound on the client, as Django does) and
    returns at once; PostgreSQL executes and commits it (autocommit: one implicit
    transaction) while the caller goes on with work that needs no database. ``result()``
    waits for the reply without holding the GIL and returns the first row, raising
    Django's database errors. Until ``result()`` has returned the connection must not be
    used for anything else: callers settle it before their next query (see the runner's
    execute wrapper). Execute wrappers do not see the statement; Django's query log does
    (when it is on), with the time from send to result.
    """

    def __init__(self, db, sql: str, params: list) -> None:
        from psycopg import ClientCursor

        self.db, self.sql, self.started = db, sql, time.perf_counter()
        raw = db.connection
        self.pgconn = raw.pgconn
        self.encoding = raw.info.encoding
        with db.wrap_database_errors:
            query = ClientCursor(raw).mogrify(sql, params)
            self.pgconn.send_query(query.encode(self.encoding))
            while self.pgconn.flush():  # nonblocking connection: wait until it is all written
                _wait(self.pgconn.socket, select.POLLOUT)
        self.done = False

    def result(self) -> tuple | None:
        """The statement's first row (text values), or None when it returned no row."""
        import psycopg
        from psycopg import pq

        if self.done:
            raise RuntimeError("the result of this statement was already read")
        self.done = True
        pgconn = self.pgconn
        with self.db.wrap_database_errors:
            try:
                pgconn.consume_input()
                while pgconn.is_busy():
                    _wait(pgconn.socket, select.POLLIN)  # releases the GIL while waiting
                    pgconn.consume_input()
                results = []
                while (res := pgconn.get_result()) is not None:
                    results.append(res)
            except psycopg.pq.PQerror as error:  # the connection broke
                raise psycopg.OperationalError(str(error)) from None
            for res in results:
                if res.status == pq.ExecStatus.FATAL_ERROR:
                    sqlstate = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
                    message = res.get_error_message(self.encoding)
                    raise psycopg.errors.lookup(sqlstate)(message) if sqlstate else psycopg.DatabaseError(message)
        if self.db.queries_logged:
            self.db.queries_log.append({"sql": self.sql, "time": f"{time.perf_counter() - self.started:.3f}"})
        last = results[-1] if results else None
        if last is None or last.ntuples == 0:
            return None
        return tuple(None if (value := last.get_value(0, column)) is None else value.decode(self.encoding)
                     for column in range(last.nfields))


def send(sql: str, params: list) -> InFlight | None:
    """Send ``sql`` on this thread's connection and return without waiting (see InFlight);
    None inside a transaction, where a statement commits nothing by itself: the caller
    then runs it the usual way."""
    db = connection
    db.ensure_connection()
    if db.in_atomic_block or not db.get_autocommit():
        return None
    return InFlight(db, sql, params)
