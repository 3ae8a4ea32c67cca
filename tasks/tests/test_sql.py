"""tasks.sql.db_value: what Django's get_db_prep_save gives, with values of the column's type bound as they are."""

import datetime
import json
import uuid

import pytest
from django.db import connection

from tasks.models import Step, Task, TaskStatus
from tasks.sql import db_value


@pytest.mark.parametrize(("model", "name", "value"), [
    (Step, "kind", "llm"),
    (Step, "index", 3),
    (Step, "index", "3"),  # converted by Django
    (Step, "error", ""),
    (Task, "status", TaskStatus.RUNNING),  # an enum member: converted by Django
    (Task, "progress", 0.25),
    (Task, "progress", 1),  # an int for a float column: converted
    (Task, "pause_requested", True),
    (Task, "id", uuid.UUID(int=7)),
    (Task, "updated_at", datetime.datetime(2026, 11, 26, tzinfo=datetime.UTC)),
    (Step, "input", {"a": [1, 2]}),
    (Step, "input", [1, "two"]),
    (Step, "output", None),
    (Step, "output", "a JSON string"),  # converted by Django
    # Naive: Django makes it aware (and warns).
    pytest.param(Task, "updated_at", datetime.datetime(2026, 11, 26, 7, 0),
                 marks=pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")),
    (Task, "finished_at", None),
])
def test_db_value_matches_djangos_conversion(model, name, value):
    field = model._meta.get_field(name)
    expected = field.get_db_prep_save(value, connection)
    got = db_value(field, value, connection)
    if hasattr(expected, "obj"):  # JSON: psycopg's wrapper around the value
        assert type(got) is type(expected) and got.obj == expected.obj
    else:
        assert got == expected and type(got) is type(expected)


def test_values_of_the_column_type_are_bound_as_they_are():
    field = Step._meta.get_field("kind")
    value = "tool"
    assert db_value(field, value, connection) is value


def test_integers_keep_one_parameter_type_whatever_their_size():
    # psycopg would send 1 as int2 and 40000 as int4: a prepared statement per combination.
    field = Step._meta.get_field("tokens_in")
    assert {type(db_value(field, value, connection)) for value in (1, 40000)} == {
        type(field.get_db_prep_save(1, connection))}


@pytest.mark.django_db
def test_json_text_is_bound_as_the_json_it_holds():
    from agentos.db import send
    from tasks.sql import JSONText

    field = Step._meta.get_field("context")
    value = db_value(field, JSONText('{"steps": [1, 2], "kind": "llm"}'), connection)
    row = send("SELECT %s::jsonb -> 'steps', jsonb_typeof(%s::jsonb)", [value, value]).result()
    # An object, not a string holding JSON (jsonb comes back as text, as Django reads it).
    assert json.loads(row[0]) == [1, 2] and row[1] == "object"
