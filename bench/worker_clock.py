"""Timestamps from inside a benchmark's Celery worker, one JSON line per mark.

Loaded into a worker with ``--include bench.worker_clock`` (bench.resume does): for each
``run_task`` message, wall-clock times (``time.time()``, like ``Step.created_at``) when the
worker received it, when a pool thread started it, when the runner held the lease and when
the slice's state was loaded, in ``clock_file(<the worker's pid>)``, which the benchmark
process reads. Nothing here changes what the worker does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from celery import signals

_lock = threading.Lock()


def clock_file(pid: int) -> Path:
    from bench.processes import LOG_DIR

    return LOG_DIR / f"worker-clock-{pid}.jsonl"


def mark(task_id, what: str) -> None:
    line = json.dumps({"task": str(task_id), "what": what, "t": time.time()})
    with _lock, open(clock_file(os.getpid()), "a") as out:
        out.write(line + "\n")


@signals.task_received.connect
def received(request=None, **kwargs) -> None:
    if request is not None and request.name == "tasks.run_task" and request.args:
        mark(request.args[0], "received")


@signals.task_prerun.connect
def started(task=None, args=None, **kwargs) -> None:
    if getattr(task, "name", "") == "tasks.run_task" and args:
        mark(args[0], "started")


@signals.worker_ready.connect
def wrap_runner(**kwargs) -> None:
    import tasks.runner

    lease_acquire, load_state = tasks.runner.lease_acquire, tasks.runner.load_state

    def leased(task_id, *args, **kw):
        task = lease_acquire(task_id, *args, **kw)
        mark(task_id, "leased")
        return task

    def loaded(task, *args, **kw):
        state = load_state(task, *args, **kw)
        mark(task.pk, "state_loaded")
        return state

    tasks.runner.lease_acquire, tasks.runner.load_state = leased, loaded
