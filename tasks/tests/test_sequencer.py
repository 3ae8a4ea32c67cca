"""StepSequencer: a gap filled from the database never announces the task's end early."""

from __future__ import annotations

import asyncio

from tasks.api import events
from tasks.api.events import Snapshot, StepSequencer


def step(index: int) -> dict:
    return {"index": index, "kind": "llm"}


def test_steps_read_back_for_a_gap_carry_the_task_the_client_had(monkeypatch):
    running, completed = {"status": "running"}, {"status": "completed"}
    sequencer = StepSequencer(task=None, after=None)
    sequencer.take_snapshot(Snapshot(running, [step(0), step(1)]))
    # The events of steps 2 and 3 were lost; the final step 4 arrives with the task completed.
    monkeypatch.setattr(events, "read_steps", lambda task, after: [step(i) for i in range(after + 1, 5)])
    sent = asyncio.run(sequencer.admit({"type": "step", "seq": 4, "task": completed, "step": step(4)}))
    assert [event["seq"] for event in sent] == [2, 3, 4]
    # A client stops at the first message whose task is finished: that must be the last one.
    assert [event["task"]["status"] for event in sent] == ["running", "running", "completed"]


def test_a_finished_status_sends_the_missing_steps_first(monkeypatch):
    running, completed = {"status": "running"}, {"status": "completed"}
    sequencer = StepSequencer(task=None, after=None)
    sequencer.take_snapshot(Snapshot(running, [step(0)]))
    monkeypatch.setattr(events, "read_steps", lambda task, after: [step(i) for i in range(after + 1, 3)])
    sent = asyncio.run(sequencer.admit({"type": "status", "seq": 2, "task": completed, "step": None}))
    assert [(event["type"], event["task"]["status"]) for event in sent] == [
        ("step", "running"), ("step", "running"), ("status", "completed")]
