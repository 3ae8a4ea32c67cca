"""Logs: every line of a task's work names the task, the step and the worker; JSON on
request; a model failure is logged with its typed code."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agentos.logfilters import TaskContextFilter
from observability.logs import JsonFormatter
from observability.tests.conftest import run_to_end
from tasks.services import task_create

pytestmark = pytest.mark.django_db


class RefusingProvider:
    name, model = "offline", "offline-rules"

    def complete(self, request):
        from agentos.llm import ModelRefusal

        logging.getLogger("tests.provider").info("calling the model")
        raise ModelRefusal("the model declined to answer")


@pytest.fixture
def log_lines():
    """The root logger's records in the JSON format, as settings.LOGGING builds the handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TaskContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_model_failure_is_logged_with_its_code_task_step_and_worker(agents_defaults, user, monkeypatch,
                                                                      log_lines):
    import tasks.execution

    monkeypatch.setattr(tasks.execution, "get_provider", RefusingProvider)
    task = task_create(owner=user, query="compute 12 * 7")
    run_to_end(task.id)
    lines = log_lines()
    failure = next(line for line in lines if line["message"].startswith("model call failed"))
    assert failure["error_code"] == "refusal" and failure["level"] == "WARNING"
    assert (failure["task_id"], failure["step_index"], failure["worker_id"]) == (str(task.id), 1, "test-worker")
    calls = [line for line in lines if line["logger"] == "tests.provider"]
    assert calls and all(line["task_id"] == str(task.id) and line["step_index"] is not None for line in calls)


def test_outside_a_task_the_context_is_empty(log_lines):
    logging.getLogger("tests.other").warning("hello %s", "world")
    (line,) = [line for line in log_lines() if line["logger"] == "tests.other"]
    assert line["message"] == "hello world"
    assert (line["task_id"], line["step_index"], line["worker_id"]) == (None, None, None)


def test_the_text_format_appends_the_task_context():
    from agentos.logfilters import step_index_var, task_id_var, worker_id_var

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "step done", (), None)
    tokens = task_id_var.set("t-1"), step_index_var.set(4), worker_id_var.set("host:1:abc")
    try:
        TaskContextFilter().filter(record)
    finally:
        for var, token in zip((task_id_var, step_index_var, worker_id_var), tokens, strict=True):
            var.reset(token)
    formatter = logging.Formatter("%(levelname)s %(name)s%(task_context)s: %(message)s")
    assert formatter.format(record) == "INFO x task=t-1 step=4 worker=host:1:abc: step done"


def test_the_console_leaves_out_the_lease_checks_routine_lines_but_not_a_takeover(settings):
    """Beat runs the lease check every second; Celery's three INFO lines per run (sent,
    received, succeeded with 0) stay off the console. A run that took tasks over, a failure
    and other jobs' lines still show."""
    from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS

    from agentos.logfilters import RoutineJobsFilter

    assert "routine_jobs" in settings.LOGGING["handlers"]["console"]["filters"]
    job = "tasks.requeue_expired_leases"

    def shown(logger: str, message: str, args, level: int = logging.INFO) -> bool:
        record = logging.LogRecord(logger, level, __file__, 1, message, None, None)
        record.args = args  # a dict, as Celery passes it, is set after construction
        return RoutineJobsFilter().filter(record)

    success = {"id": "1", "name": job, "runtime": 0.003, "return_value": "0", "args": (), "kwargs": {}}
    assert not shown("celery.beat", "Scheduler: Sending due task %s (%s)", ("tasks-requeue-expired-leases", job))
    assert not shown("celery.worker.strategy", LOG_RECEIVED, {"id": "1", "name": job, "args": (), "kwargs": {}})
    assert not shown("celery.app.trace", LOG_SUCCESS, success)
    assert shown("celery.app.trace", LOG_SUCCESS, {**success, "return_value": "3"})
    assert shown("celery.app.trace", "Task %(name)s[%(id)s] raised unexpected: %(exc)s",
                 {"id": "1", "name": job, "exc": "OperationalError()"}, level=logging.ERROR)
    assert shown("celery.app.trace", LOG_SUCCESS, {**success, "name": "tasks.run_task"})
    assert shown("tasks.runner", "task %s: lease lost before step %s could commit", (job, 3))
