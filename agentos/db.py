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
