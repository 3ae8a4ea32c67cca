"""Fixtures shared by every app's tests: users, API clients and real processes."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Before the test database is created: close the connection pools opened so far.

    Django keeps one psycopg pool per alias (DB_POOL_MAX_SIZE), made with the settings of
    the moment, and closes it when the test database is cloned or destroyed but not when it
    is created. A pool opened before (anything that touched the database at start-up) would
    go on serving connections to the development database: the migrations and every test
    would run there, while the workers and daphne the tests start, given the test database's
    URL, would find it empty."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", "staff@example.com", "staff-password", is_staff=True,
                                                 is_superuser=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def auth_client(api_client, user):
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def defaults(db):
    """The default prompts, tools, agents and knowledge base (idempotent loader)."""
    call_command("bootstrap", verbosity=0)


@pytest.fixture
def worker(transactional_db):
    """A real Celery worker process on the test database."""
    from agentos.testing import start_worker

    process = start_worker()
    yield process
    process.stop()


@pytest.fixture
def live_daphne(transactional_db):
    """A real daphne server process on the test database."""
    from agentos.testing import start_daphne

    server = start_daphne()
    yield server
    server.stop()


@pytest.fixture
def make_worker(transactional_db):
    """Real Celery worker processes with extra environment; all stopped at teardown."""
    from agentos.testing import process_env, start_worker

    started = []

    def make(**env: str):
        worker = start_worker(env=process_env(**{k: str(v) for k, v in env.items()}))
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()
