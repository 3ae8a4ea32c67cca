"""Which version of a prompt a task gets during a weighted rollout: a pure function.

The assignment hashes the task id with the template's slug, so a task keeps its arm across
slices, retries and resumes (no state stored anywhere), and the tasks a 10 % candidate
gets for ``plan`` are not the same tasks it gets for ``synthesize``. No Django import.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000  # weights are honoured to 0.01 %


def rollout_bucket(*, slug: str, task_id: object) -> int:
    """0 … BUCKETS-1, uniform over task ids, stable across processes and releases.

    sha256 rather than ``hash()``: Python's string hash is salted per process.
    """
    digest = hashlib.sha256(f"{slug}:{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose_version_id(*, slug: str, task_id: object, active_id: int, candidate_id: int | None,
                      weight: float | None) -> int:
    """``candidate_id`` for ``weight`` percent of task ids, ``active_id`` for the rest."""
    if candidate_id is None or not weight or weight <= 0:
        return active_id
    threshold = round(min(float(weight), 100.0) * BUCKETS / 100)
    return candidate_id if rollout_bucket(slug=slug, task_id=task_id) < threshold else active_id
