"""Fixtures shared by every app's tests: users, API clients and real processes."""

from __future__ import annotations

import pytest
from django.core.management import call_command


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
