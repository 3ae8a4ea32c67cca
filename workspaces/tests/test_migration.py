"""The workspaces migrations on a populated database: every user gets a personal workspace
(as its admin) holding all their data; shared rows stay shared; API tokens keep working.

The database is migrated back to just before the workspaces app, filled through the
historical models, then migrated forward again (and left at the latest state)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("workspaces", None)]  # also unapplies the migrations that depend on it


def migrate(targets):
    """Migrate to ``targets``; the models as they are then."""
    executor = MigrationExecutor(connection)
    return executor.migrate(targets).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def populate(apps) -> dict:
    User = apps.get_model("auth", "User")
    Token = apps.get_model("authtoken", "Token")
    Task = apps.get_model("tasks", "Task")
    Step = apps.get_model("tasks", "Step")
    MemoryEntry = apps.get_model("memory", "MemoryEntry")
    Webhook = apps.get_model("triggers", "Webhook")
    ScheduledQuery = apps.get_model("triggers", "ScheduledQuery")
    Dataset = apps.get_model("evals", "Dataset")
    users = {name: User.objects.create(username=name) for name in ("ann", "ben", "cy")}
    keys = {name: Token.objects.create(user=user, key=f"{name}-key".ljust(40, "0")).key for name, user in users.items()}
    for name in ("ann", "ben"):
        for number in range(3):
            task = Task.objects.create(owner=users[name], query=f"{name} {number}", step_budget=10)
            Step.objects.create(task=task, index=0, kind="trigger")
        MemoryEntry.objects.create(owner=users[name], content=f"{name} note", content_hash=name, embedder="x")
        Webhook.objects.create(owner=users[name], name=f"{name} hook")
        ScheduledQuery.objects.create(owner=users[name], name=f"{name} schedule", query="q")
        Dataset.objects.create(owner=users[name], name=f"{name}-set")
    MemoryEntry.objects.create(owner=None, content="shared", content_hash="shared", embedder="x")
    Dataset.objects.create(owner=None, name="shipped")
    return keys


def test_moves_a_populated_database_without_loss(django_user_model):
    try:
        old = migrate(BEFORE)
        keys = populate(old)
        migrate(latest())
    finally:
        migrate(latest())
    from rest_framework.test import APIClient

    from evals.models import Dataset
    from memory.models import MemoryEntry
    from tasks.models import Step, Task
    from triggers.models import ScheduledQuery, Webhook
    from workspaces.models import Membership

    for name in ("ann", "ben", "cy"):
        user = django_user_model.objects.get(username=name)
        workspace = user.personal_workspace
        assert list(Membership.objects.filter(user=user).values_list("workspace_id", "role")) == [
            (workspace.pk, "admin")]
        owned = 0 if name == "cy" else 1
        assert Task.objects.filter(owner=user, workspace=workspace).count() == 3 * owned
        assert Step.objects.filter(task__owner=user).count() == 3 * owned
        for model in (MemoryEntry, Webhook, ScheduledQuery, Dataset):
            assert model.objects.filter(owner=user, workspace=workspace).count() == owned, model
            assert not model.objects.filter(owner=user).exclude(workspace=workspace).exists(), model
        client = APIClient(headers={"Authorization": f"Token {keys[name]}"})
        listed = client.get("/api/v1/tasks/")
        assert listed.status_code == 200
        assert sorted(task["query"] for task in listed.json()["results"]) == [f"{name} {n}" for n in range(3 * owned)]
    assert Task.objects.count() == 6 and Step.objects.count() == 6
    assert MemoryEntry.objects.get(owner=None).workspace_id is None
    assert Dataset.objects.get(owner=None).workspace_id is None
