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
