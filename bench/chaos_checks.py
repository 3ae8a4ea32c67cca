"""What the chaos soak verifies, and the websocket clients that follow tasks through it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

FINISHED = frozenset({"completed", "failed", "cancelled"})
IDLE_RECONNECT_S = 15.0  # a client that hears nothing for this long reconnects with ?after=


@dataclass
class Stream:
    """What one websocket client received for one task."""

    task_id: str
    received: list[int] = field(default_factory=list)
    duplicates: int = 0  # an index at or below the highest already held (the client drops it)
    connects: int = 0
    idle_reconnects: int = 0
    finished: bool = False
    error: str = ""


async def _follow(base_url: str, token: str, stream: Stream, deadline: float) -> None:
    from websockets.asyncio.client import connect

    ws_url = base_url.replace("http://", "ws://")
    highest = -1
    while time.monotonic() < deadline and not stream.finished:
        url = f"{ws_url}/ws/tasks/{stream.task_id}/?token={token}&after={highest}"
        try:
            async with connect(url, origin=base_url, proxy=None, open_timeout=5, close_timeout=1) as socket:
                stream.connects += 1
                while not stream.finished:
                    try:
                        raw = await asyncio.wait_for(socket.recv(), IDLE_RECONNECT_S)
                    except TimeoutError:
                        stream.idle_reconnects += 1
                        break
                    message = json.loads(raw)
                    steps = message.get("steps") or ([message["step"]] if message.get("step") else [])
                    for step in steps:
                        if step["index"] <= highest:
                            stream.duplicates += 1
                            continue
                        stream.received.append(step["index"])
                        highest = step["index"]
                    if (message.get("task") or {}).get("status") in FINISHED:
                        stream.finished = True
        except Exception as error:  # refused while the web process is down, dropped when it dies
            stream.error = f"{type(error).__name__}: {error}"[:200]
            await asyncio.sleep(0.5)


class _Follower(threading.Thread):
    def __init__(self, base_url: str, token: str, task_ids: list[str], timeout: float) -> None:
        super().__init__(daemon=True)
        self.base_url, self.token, self.timeout = base_url, token, timeout
        self.streams = [Stream(task_id) for task_id in task_ids]
        self.future: Future = Future()

    def run(self) -> None:
        async def all_streams() -> None:
            deadline = time.monotonic() + self.timeout
            await asyncio.gather(*(_follow(self.base_url, self.token, s, deadline) for s in self.streams))

        try:
            asyncio.run(all_streams())
            self.future.set_result(self.streams)
        except Exception as error:
            self.future.set_exception(error)


def follow_tasks(base_url: str, token: str, task_ids: list[str], *, timeout: float) -> Future:
    """Websocket clients for `task_ids`, in a background thread; the future gives their Streams."""
    follower = _Follower(base_url, token, task_ids, timeout)
    follower.start()
    return follower.future


def check_tasks(task_ids: list[str], *, reference: list[tuple], streams: list[Stream]) -> dict:
    """The soak's verdict: lost and duplicated steps, side effects, websocket gaps."""
    from django.db import close_old_connections

    from memory.models import MemoryEntry
    from tasks.models import Step, Task

    close_old_connections()
    statuses = dict(Task.objects.filter(pk__in=task_ids).values_list("id", "status"))
    steps: dict[str, list[tuple]] = {task_id: [] for task_id in task_ids}
    for row in Step.objects.filter(task_id__in=task_ids).order_by("task_id", "index").values_list(
            "task_id", "index", "kind", "agent", "subtask_id", "input"):
        steps[str(row[0])].append(row[1:])
    not_completed = [t for t in task_ids if statuses.get(_uuid(t)) != "completed"]
    index_problems, diverged, lost, duplicated = [], [], 0, 0
    for task_id, rows in steps.items():
        indexes = [row[0] for row in rows]
        if indexes != list(range(len(indexes))):
            index_problems.append(task_id)
        sequence = [tuple(row[1:4]) for row in rows]
        if sequence != reference:
            # Longer than the clean run: a step ran twice; shorter: a step is missing.
            diverged.append(task_id)
            duplicated += max(0, len(sequence) - len(reference))
            lost += max(0, len(reference) - len(sequence))
    effects = _side_effects_settled(steps, MemoryEntry)
    ws = _websocket_gaps(streams, steps)
    return {
        "completed": len(task_ids) - len(not_completed),
        "not_completed": not_completed[:10],
        "index_gaps_or_duplicates": index_problems[:10],
        "diverged_from_clean_run": diverged[:10],
        "lost": lost,
        "duplicated": duplicated,
        **effects,
        **ws,
        "ok": not not_completed and not index_problems and not diverged
        and not effects["side_effect_duplicates"] and not effects["side_effect_missing"]
        and not ws["websocket_missed"] and not ws["websocket_unfinished"],
    }


def _uuid(task_id: str):
    import uuid

    return uuid.UUID(task_id)


# A worker killed between a result step's commit and its memory write leaves that entry to
# beat's tasks.remember_results job, which runs every minute: the checks wait for it as a user
# would, and only for result entries (a memory_store step's entry is written before its step).
RESULT_CATCH_UP_SECONDS = 75


def _side_effects_settled(steps: dict[str, list[tuple]], memory_entry) -> dict:
    from django.db import close_old_connections

    started = time.monotonic()
    while True:
        effects = _side_effects(steps, memory_entry)
        if not effects.pop("missing_results") or time.monotonic() - started >= RESULT_CATCH_UP_SECONDS:
            break
        time.sleep(1)
        close_old_connections()
    effects["side_effect_waited_for_results_s"] = round(time.monotonic() - started, 1)
    return effects


def _side_effects(steps: dict[str, list[tuple]], memory_entry) -> dict:
    """Each side effect happened once: one memory entry per committed memory_store step (keyed
    by the step's idempotency key) and one for each completed task's result (``<task>:result``)."""
    expected = {(row[4] or {}).get("idempotency_key") for rows in steps.values() for row in rows
                if row[1] == "tool" and (row[4] or {}).get("tool") == "memory_store"}
    expected |= {f"{task_id}:result" for task_id, rows in steps.items()
                 if rows and rows[-1][1] == "result" and (rows[-1][4] or {}).get("memory_key")}
    expected.discard(None)
    entries = list(memory_entry.objects.filter(source_task_id__in=list(steps)).values_list(
        "source_task_id", "idempotency_key", "content"))
    keys = [key for _task, key, _content in entries]
    # Twice the same effect under two keys, an effect without a key, or a key no step owns.
    repeated = len(entries) - len({(task, content) for task, _key, content in entries})
    unexpected = sum(1 for key in keys if not key or key not in expected)
    return {"side_effect_calls": len(expected), "side_effect_entries": len(entries),
            "side_effect_duplicates": repeated + unexpected + len(keys) - len(set(keys)),
            "side_effect_missing": len(expected - set(keys)),
            "missing_results": sum(1 for key in expected - set(keys) if key.endswith(":result"))}


def _websocket_gaps(streams: list[Stream], steps: dict[str, list[tuple]]) -> dict:
    gaps = {s.task_id: sorted({row[0] for row in steps.get(s.task_id, [])} - set(s.received)) for s in streams}
    missed = sum(len(indexes) for indexes in gaps.values())
    return {
        # Which indexes a client missed, with what it received and its connects (diagnosis).
        "websocket_missed_detail": [{"task": s.task_id, "missed": gaps[s.task_id], "received": s.received,
                                     "connects": s.connects, "idle_reconnects": s.idle_reconnects}
                                    for s in streams if gaps[s.task_id]],
        "websocket_clients": len(streams),
        "websocket_connects": sum(s.connects for s in streams),
        "websocket_missed": missed,
        "websocket_duplicates_dropped": sum(s.duplicates for s in streams),
        "websocket_idle_reconnects": sum(s.idle_reconnects for s in streams),
        "websocket_unfinished": sum(1 for s in streams if not s.finished),
    }
