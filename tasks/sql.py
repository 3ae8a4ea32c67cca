"""SQL shared by the statements that append a step together with their task update.

The runner's per-step commit and task_resume each write the task row and insert a step in
ONE statement (a data-modifying CTE): ``step_insert`` is the INSERT ... SELECT part.

These statements run on every step, so their text is built once per shape and cached
(``lru_cache``): only the parameter values are computed per step. Building the text from
the models' field metadata (column names, casts) each time cost more than the round trip
to PostgreSQL.
"""

from __future__ import annotations

import datetime
import uuid
from functools import lru_cache

from django.db import connections
from psycopg.types.json import Jsonb

from tasks.models import Step

# Columns whose Python value, when it already has this exact type, is what Django's
# get_db_prep_save would return (it only converts other values); integers get the sized
# wrapper Django gives them (Int4, Int8...), so a prepared statement keeps its types.
_AS_IS = {"CharField": str, "TextField": str, "BooleanField": bool, "FloatField": float, "UUIDField": uuid.UUID}
_INTEGERS = ("IntegerField", "PositiveIntegerField", "BigIntegerField", "SmallIntegerField",
             "PositiveBigIntegerField", "PositiveSmallIntegerField")


class JSONText(str):
    """A JSON column's value already serialised (bound as that text, not as a string)."""


def db_value(field, value, connection):
    """``field.get_db_prep_save(value, connection)``, without its conversion chain for a
    value that already has the column's type (a statement on every step binds ~30 values);
    a JSONText is bound as the JSON it holds."""
    kind = type(value)
    if kind is JSONText:
        return Jsonb(value, dumps=str)
    internal = field.get_internal_type()
    if kind is _AS_IS.get(internal):
        return value
    if kind is int and internal in _INTEGERS:
        return connection.ops.adapt_integerfield_value(value, internal)
    if kind is datetime.datetime and internal == "DateTimeField" and value.tzinfo is not None:
        return connection.ops.adapt_datetimefield_value(value)
    if (kind is dict or kind is list) and internal == "JSONField":
        return connection.ops.adapt_json_value(value, field.encoder)
    return field.get_db_prep_save(value, connection)


def _cast_type(field, connection) -> str:
    # Strings as text: a cast to varchar(n) would truncate, the column itself raises.
    return "text" if field.get_internal_type() in ("CharField", "TextField") else field.db_type(connection)


@lru_cache(maxsize=16)
def _step_insert_sql(source: str, index_sql: str | None, alias: str) -> tuple[str, tuple]:
    """The INSERT text for one (source, index expression) and the fields whose values are
    its parameters, in order."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = [f for f in Step._meta.concrete_fields if not f.primary_key]
    values, bound = [], []
    for field in fields:
        if field.attname == "index" and index_sql:
            values.append(index_sql)
            continue
        values.append(f"%s::{_cast_type(field, connection)}")
        bound.append(field)
    columns = ", ".join(quote(f.column) for f in fields)
    # Column names come from the model's fields.
    sql = f"INSERT INTO {Step._meta.db_table} ({columns}) SELECT {', '.join(values)} FROM {source} RETURNING id"  # noqa: S608
    return sql, tuple(bound)


def step_insert_sql(*, source: str, index_sql: str | None = None, alias: str = "default") -> str:
    """The text ``step_insert`` returns, without computing any value."""
    return _step_insert_sql(source, index_sql, alias)[0]


def step_insert_position(field, *, source: str, index_sql: str | None = None, alias: str = "default") -> int:
    """Where ``field``'s value is among ``step_insert``'s parameters."""
    return _step_insert_sql(source, index_sql, alias)[1].index(field)


def step_insert(step, *, source: str, index_sql: str | None = None, alias: str = "default") -> tuple[str, list]:
    """``INSERT INTO tasks_step (...) SELECT ... FROM <source> RETURNING id`` and its
    parameters (``step``: a Step, or any object with its fields' attribute names): a row
    only when ``source`` (a CTE of the same statement) has one.

    ``index_sql``: an SQL expression over ``source`` for the index column (the index is
    then computed in the statement, e.g. from the task's step count). Every value is a
    parameter, typed, because with server-side binding a parameter in a SELECT list has no
    type of its own.
    """
    sql, fields = _step_insert_sql(source, index_sql, alias)
    connection = connections[alias]
    return sql, [db_value(field, getattr(step, field.attname), connection) for field in fields]
