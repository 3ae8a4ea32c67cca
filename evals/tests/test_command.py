"""``manage.py prompts eval``: the table, the pass rate and the exit status for CI."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evals.models import Dataset


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("prompts", "eval", *args, stdout=out)
    return out.getvalue()


def test_prints_the_table_and_passes_above_the_threshold(plan_server, plan_versions):
    # The shipped dataset is loaded by the command when it is missing.
    assert not Dataset.objects.filter(name="plan-smoke").exists()
    output = run("plan", "--version", "1", "--dataset", "plan-smoke", "--min-pass-rate", "0.8")
    assert "plan@1: pass rate 100% (5/5)" in output
    assert "What is 17 multiplied by 23?" in output and output.count("| pass ") == 5


def test_exits_non_zero_below_the_threshold(plan_server, plan_versions):
    with pytest.raises(CommandError) as caught:
        run("plan", "--version", "2", "--dataset", "plan-smoke", "--min-pass-rate", "0.8")
    assert caught.value.returncode == 1
    assert "plan@2: pass rate 60% is below the required 80%" in str(caught.value)


def test_compare_prints_both_versions(plan_server, plan_versions):
    output = run("plan", "--version", "2", "--compare", "1", "--dataset", "plan-smoke", "--min-pass-rate", "0.5")
    assert "plan@2: pass rate 60% (3/5)" in output and "plan@1: pass rate 100% (5/5)" in output
    line = next(text for text in output.splitlines() if "17 multiplied" in text)
    assert "FAIL" in line and "numeric" in line


@pytest.mark.django_db(transaction=True)  # the run's threads use their own connections
def test_a_worker_thread_that_fails_fails_the_command_whatever_the_pass_rate(plan_server, plan_versions,
                                                                              monkeypatch):
    """With --concurrency, a thread that dies mid-run (here: after it claimed an item, its
    database connection lost) leaves that item unevaluated: the pass rate of the others says
    nothing, and CI must not pass."""
    from django.db import OperationalError

    from evals import execution
    from evals.management.commands import prompts as command
    from evals.models import EvalResult

    lock, calls, claimed = threading.Lock(), [], threading.Event()

    def work(*, run_id):
        with lock:
            first = not calls
            calls.append(run_id)
        if not first:
            assert claimed.wait(30)
            return execution.eval_run_work(run_id=run_id)
        try:
            item = EvalResult.objects.filter(run_id=run_id, status="pending").order_by("id").first()
            EvalResult.objects.filter(pk=item.pk).update(status="running")
        finally:
            claimed.set()
        raise OperationalError("the connection to the server was lost")

    monkeypatch.setattr(command, "eval_run_work", work)
    with pytest.raises(CommandError) as caught:
        run("plan", "--version", "1", "--dataset", "plan-smoke", "--min-pass-rate", "0.5", "--concurrency", "2")
    assert caught.value.returncode == 1
    assert str(caught.value) == ("plan@1: the run did not complete (running, 4 of 5 items evaluated); a worker "
                                 "failed: OperationalError: the connection to the server was lost")
    assert len(calls) == 2


def test_the_command_line_entry_point_exits_with_status_1(plan_versions, tmp_path):
    """The real process: what a CI job sees (offline provider: plan@1 is not perfect there)."""
    import subprocess
    import sys

    from agentos.testing import process_env

    # The test database is only visible inside this test's transaction; the child runs on a
    # committed copy, so this check uses an argument error that needs no data.
    result = subprocess.run([sys.executable, "manage.py", "prompts", "eval", "plan", "--version", "1",
                             "--dataset", "plan-smoke", "--min-pass-rate", "2"],
                            env=process_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "--min-pass-rate is a fraction" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "--version", "9", "--dataset", "plan-smoke"], "prompt plan has no version 9"),
    (["plan", "--version", "1", "--dataset", "nope"], "no dataset named 'nope'"),
])
def test_errors_name_the_problem(plan_versions, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
