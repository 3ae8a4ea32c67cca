"""Fairness between owners: one owner's thousand queued tasks do not starve another's one.

Every ``run_task`` message (a new task, and each later slice of it) carries a Celery
priority computed when it is sent, from how many active tasks (queued, running, waiting
for the provider) its owner has:

    priority = ceil(log2(active tasks)), at most 9    (1 task -> 0, 2 -> 1, 3-4 -> 2, ... 257+ -> 9)

On the Redis transport priority 0 comes first (settings: CELERY_BROKER_TRANSPORT_OPTIONS,
``priority_steps`` 0-9, ``queue_order_strategy`` "priority"): each priority is its own
Redis list and a worker takes from the lowest-numbered list that has a message. So a
newcomer's single task jumps the queue of a heavy owner's backlog, while the heavy owner's
tasks still all run, in their order, whenever nothing lighter waits. Messages already
taken by a worker (its prefetch, one per worker thread) are not overtaken: a newcomer waits
at most for the slices in hand (TASK_SLICE_SECONDS each).

The owner is the task's ``owner`` (a person, or a workspace service token, which is its own
user): an integration flooding a team workspace does not starve the people in it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.db import connection

from tasks.models import ACTIVE_STATUSES, Task

LOWEST_PRIORITY = 9
# Enough to tell every priority apart (2**8 < 257): counting stops there, so the query
# costs the same for an owner with 300 active tasks as for one with 30,000.
COUNT_CAP = 2 ** (LOWEST_PRIORITY - 1) + 1


def priority_for(active: int) -> int:
    """The message priority (0 first) of an owner with ``active`` active tasks."""
    return min(LOWEST_PRIORITY, max(0, active - 1).bit_length())


def task_priority(task_id: Any) -> int:
    """The priority of the next ``run_task`` message of the task: one statement, served by
    the partial index task_owner_active_idx (tasks/models.py). It is sent for every slice,
    so it is written once as SQL rather than compiled by the ORM on every call (a
    millisecond of CPU each time)."""
    with connection.cursor() as cursor:
        cursor.execute(_active_sql(), [task_id, *ACTIVE_STATUSES, COUNT_CAP])
        (active,) = cursor.fetchone()
    return priority_for(active)


@lru_cache(maxsize=1)
def _active_sql() -> str:
    table = connection.ops.quote_name(Task._meta.db_table)
    owner = connection.ops.quote_name(Task._meta.get_field("owner").column)
    status = connection.ops.quote_name(Task._meta.get_field("status").column)
    # Table and column names from the model; values are parameters. No ORDER BY: the
    # count stops at the cap, in whatever order the index yields the rows.
    return (f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {owner} = "  # noqa: S608
            f"(SELECT {owner} FROM {table} WHERE id = %s) AND {status} IN ({', '.join(['%s'] * len(ACTIVE_STATUSES))}) "
            "LIMIT %s) AS active")
