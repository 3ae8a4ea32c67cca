"""The tests and the processes they start (workers, daphne) use one database: the test database."""

import psycopg
import pytest
from django.db import connection

from agentos.testing import current_database_url

pytestmark = pytest.mark.django_db


def test_the_test_process_and_its_child_processes_share_the_test_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), to_regclass('tasks_task') IS NOT NULL")
        name, migrated = cursor.fetchone()
    assert name == connection.settings_dict["NAME"] and name.startswith("test_")
    assert migrated
    # What a worker or daphne started by a test connects to (agentos.testing.process_env).
    with psycopg.connect(current_database_url()) as child:
        assert child.execute("SELECT current_database(), to_regclass('tasks_task') IS NOT NULL").fetchone() == (
            name, True)
