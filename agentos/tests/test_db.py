"""agentos.db.prepared_cursor: server-side binding, prepared once per connection, Django's errors."""

import pytest
from django.db import IntegrityError, connection, transaction

from agentos.db import prepared_cursor

pytestmark = pytest.mark.django_db


def test_statement_is_prepared_once_and_reused():
    sql = "SELECT %s::int + 1 AS prepared_probe"
    for value in (1, 2, 3):
        with prepared_cursor() as cursor:
            cursor.execute(sql, [value])
            assert cursor.fetchone() == (value + 1,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%prepared_probe%"])
        assert cursor.fetchone() == (1,)


def test_database_errors_are_djangos():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE probe_unique (id int PRIMARY KEY)")
    with prepared_cursor() as cursor:
        cursor.execute("INSERT INTO probe_unique VALUES (%s)", [1])
    with pytest.raises(IntegrityError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("INSERT INTO probe_unique VALUES (%s)", [1])


def test_django_query_log_and_execute_wrappers_see_prepared_statements():
    from django.test.utils import CaptureQueriesContext

    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(wrapper), \
            prepared_cursor() as cursor:
        cursor.execute("SELECT %s::text", ["logged"])
        assert cursor.fetchone() == ("logged",)
    assert len(queries) == 1
    assert seen == ["SELECT %s::text"]


# --- agentos.db.send: a statement in flight -----------------------------------------------

def test_send_inside_a_transaction_runs_at_once_and_answers_the_same_way():
    from agentos.db import InFlight, send

    # The test's own transaction (django_db without transaction=True): the statement runs
    # at once, inside it, and result() gives its row or raises its error like InFlight's.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE probe_done (id int PRIMARY KEY, flag bool)")
    done = send("INSERT INTO probe_done VALUES (%s, %s) RETURNING id, flag", [1, True])
    assert not isinstance(done, InFlight)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM probe_done")
        assert cursor.fetchone() == (1,)
    assert done.result() == (1, True)
    duplicate = send("INSERT INTO probe_done VALUES (%s, %s) RETURNING id", [1, False])
    with pytest.raises(IntegrityError):
        duplicate.result()
    with connection.cursor() as cursor:  # the transaction is still usable
        cursor.execute("SELECT count(*) FROM probe_done")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db(transaction=True)
def test_sent_statement_commits_and_returns_its_row_later():
    from django.test.utils import CaptureQueriesContext

    from agentos.db import send

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe_inflight (id int PRIMARY KEY, flag bool, body jsonb)")
    try:
        with CaptureQueriesContext(connection) as queries:
            inflight = send("INSERT INTO probe_inflight VALUES (%s, %s, %s::jsonb) RETURNING id, flag, body",
                            [7, True, '{"text": "it\'s \\"quoted\\""}'])
            # Committed by itself: another connection sees the row before the reply is read.
            other = connection.copy()
            try:
                with other.cursor() as cursor:
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM probe_inflight")
                        if cursor.fetchone() == (1,):
                            break
                    else:
                        pytest.fail("the sent statement never committed")
            finally:
                other.close()
            # Typed as a Django cursor types them (json stays text: the field decodes it).
            assert inflight.result() == (7, True, '{"text": "it\'s \\"quoted\\""}')
        assert [q["sql"] for q in queries] == [
            "INSERT INTO probe_inflight VALUES (%s, %s, %s::jsonb) RETURNING id, flag, body"]
        with pytest.raises(RuntimeError):
            inflight.result()
        # No reply left on the connection: the next query works.
        assert send("SELECT id FROM probe_inflight WHERE id = %s", [8]).result() is None
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE probe_inflight")


@pytest.mark.django_db(transaction=True)
def test_sent_statement_errors_are_djangos_and_leave_the_connection_usable():
    from django.db import DataError

    from agentos.db import send

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe_inflight_unique (id int PRIMARY KEY)")
    try:
        send("INSERT INTO probe_inflight_unique VALUES (%s)", [1]).result()
        with pytest.raises(IntegrityError):
            send("INSERT INTO probe_inflight_unique VALUES (%s)", [1]).result()
        with pytest.raises(DataError):
            send("SELECT %s::int", ["not a number"]).result()
        assert send("SELECT count(*) FROM probe_inflight_unique", []).result() == (1,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE probe_inflight_unique")


@pytest.mark.django_db(transaction=True)
def test_sent_statements_are_prepared_per_parameter_types_and_survive_deallocate_all():
    from agentos.db import send

    sql = "SELECT %s::bigint + 1 AS inflight_probe"
    # 1 dumps as int2, 40000 as int4, 2**40 as int8: one prepared statement per type.
    assert [send(sql, [value]).result() for value in (1, 2, 40000, 2**40)] == [
        (2,), (3,), (40001,), (2**40 + 1,)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'agentos_%%' "
                       "AND statement LIKE %s", ["%inflight_probe%"])
        assert cursor.fetchone() == (3,)
        # What psycopg runs after a rollback on a connection where it prepared statements.
        cursor.execute("DEALLOCATE ALL")
    assert send(sql, [5]).result() == (6,)


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_in_flight_raises_djangos_operational_error():
    import socket

    from django.db import OperationalError

    from agentos.db import send

    inflight = send("SELECT pg_sleep(0.2), 1", [])
    # The connection breaks under the statement (a network failure on this side).
    broken = socket.socket(fileno=__import__("os").dup(connection.connection.pgconn.socket))
    broken.shutdown(socket.SHUT_RDWR)
    broken.close()
    with pytest.raises(OperationalError):
        inflight.result()
    connection.close()  # the next query opens a new session
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


# --- agentos.db.prepare: converted now, sent later ----------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_prepared_statement_sends_nothing_until_send_and_takes_late_values():
    import datetime

    from agentos.db import prepare

    stamp = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    statement = prepare("SELECT %s::text, %s::timestamptz, %s::int", ["kept", stamp, 7])
    # Nothing was written: the connection still runs other statements meanwhile.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    with pytest.raises(RuntimeError, match="not sent"):
        statement.result()
    later = datetime.datetime(2026, 11, 26, 7, 30, tzinfo=datetime.UTC)
    inflight = statement.send({1: later, 2: 8})
    assert inflight.result() == ("kept", later, 8)
    with pytest.raises(RuntimeError, match="already sent"):
        statement.send()


@pytest.mark.django_db(transaction=True)
def test_wait_returns_when_the_reply_arrives_or_when_the_other_thing_is_done_first():
    import os
    import time

    from agentos.db import send

    class Other:
        """Something else to wait for: done once its pipe is written to."""

        def __init__(self):
            self.r, self.w = os.pipe()

        def done(self):
            return bool(os.read(self.r, 1)) if self.ready else False

        def fileno(self):
            return self.r

        ready = False

    other, idle = Other(), Other()
    try:
        inflight = send("SELECT pg_sleep(0.3), 1", [])
        started = time.monotonic()
        other.ready = True
        os.write(other.w, b".")
        assert inflight.wait(until=other) is False  # the other thing first
        assert time.monotonic() - started < 0.2
        assert inflight.wait(until=idle) is True  # then the reply (0.3 s)
        assert time.monotonic() - started >= 0.25
        assert inflight.result() == ("", 1)
    finally:
        for pipe in (other, idle):
            os.close(pipe.r)
            os.close(pipe.w)
