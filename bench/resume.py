"""Recovery and resume latency.

    python -m bench.resume [--rounds 5] [--lease-seconds N] [--requeue-interval S] [--no-crash]

1. Crash: two workers (threads pool) and beat run, with the product's default lease and
   beat settings unless given; a task is running with a simulated 200 ms model latency.
   The worker holding its lease is SIGKILLed; measured: time from the kill to the next
   step of that task committed (by the other worker). It is bounded by the lease
   (TASK_LEASE_SECONDS, renewed every second by each live worker's heartbeat) plus beat's
   re-enqueue interval (TASK_REQUEUE_INTERVAL) plus the pickup and the step itself.
2. Resume: a task paused between two steps is resumed through the service
   (tasks.services.task_resume, what the API and the page call); measured: time from the
   call to the service's return (its "resume" step committed) and to the next step a worker
   commits (message delivery, lease, state load, an offline model call at zero latency,
   commit). Targets: crash < 5 s, resume < 10 ms. The worker runs with bench.worker_clock,
   so each round is also a timeline from the service call: the message published (the
   service's commit hook), received by the worker, started on a pool thread, the lease
   held, the state loaded, the next step stamped (``resume_timeline_median_ms``).
3. Where the resume's time goes: the same resume with the next slice run in this process
   right after the service returns (no broker, no worker), timestamped at the service's
   return, the lease taken, the state loaded and the next step committed; the worker
   rounds minus these give the message delivery and the worker's pickup.
"""

from __future__ import annotations

import argparse
import os
import time

from bench import harness, processes

DB_NAME = "agentos_bench_resume"
LONG_QUERY = "Please " + ", then ".join(f"compute {12 + i} * {7 + i}" for i in range(5)) + "."


def _max_index(task_id: str) -> int:
    from django.db import close_old_connections
    from django.db.models import Max

    from tasks.models import Step

    close_old_connections()
    highest = Step.objects.filter(task_id=task_id).aggregate(m=Max("index"))["m"]
    return -1 if highest is None else highest


def _wait(predicate, timeout: float, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def _holder(task_id: str, workers: list[processes.Service]) -> processes.Service | None:
    from tasks.models import Task

    owner = Task.objects.filter(pk=task_id).values_list("lease_owner", flat=True).first() or ""
    pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
    return next((w for w in workers if w.alive() and str(w.process.pid) == pid), None)


def crash_round(user, workers: list[processes.Service]) -> dict:
    from bench.agentos_driver import create_tasks
    from tasks.models import Step

    (task_id,) = create_tasks(owner=user, query=LONG_QUERY, count=1)
    holder = _wait(lambda: _max_index(task_id) >= 2 and _holder(task_id, workers), timeout=30)
    if holder is None:
        return {"error": "no worker held the task"}
    killed_at = time.time()
    holder.kill()
    time.sleep(0.05)  # a COMMIT already on the wire may still land; it counts as before the kill
    last = _max_index(task_id)
    step = _wait(lambda: Step.objects.filter(task_id=task_id, index=last + 1).first(), timeout=60, interval=0.01)
    holder.start()
    if step is None:
        return {"error": "no step after the kill within 60 s"}
    return {"seconds": round(step.created_at.timestamp() - killed_at, 3), "after_index": last}


class PublishClock:
    """Wall-clock times around each ``run_task`` message this process sends (tasks.services.enqueue)."""

    def __init__(self) -> None:
        import tasks.services

        self.marks: dict[str, tuple[float, float]] = {}
        original = tasks.services.enqueue

        def timed(task_id, countdown=None):
            started = time.time()
            original(task_id, countdown)
            self.marks[str(task_id)] = (started, time.time())

        tasks.services.enqueue = timed  # task_resume's commit hook looks it up at call time


def worker_marks(path: str, task_id: str, since: float) -> dict[str, float]:
    """The first time of each bench.worker_clock mark of the task after ``since``."""
    import json

    marks: dict[str, float] = {}
    try:
        with open(path) as lines:
            for line in lines:
                entry = json.loads(line)
                if entry["task"] == task_id and entry["t"] >= since:
                    marks.setdefault(entry["what"], entry["t"])
    except FileNotFoundError:
        pass
    return marks


def resume_round(user, publish: PublishClock, clock_file: str) -> dict:
    from bench.agentos_driver import create_tasks
    from tasks.models import Step, Task
    from tasks.services import task_pause, task_resume

    (task_id,) = create_tasks(owner=user, query=LONG_QUERY, count=1)
    _wait(lambda: _max_index(task_id) >= 1, timeout=30)
    task = Task.objects.get(pk=task_id)
    try:
        task_pause(task=task)
    except Exception as error:
        return {"error": f"pause: {error}"}
    if not _wait(lambda: Task.objects.filter(pk=task_id, status="paused").exists(), timeout=30):
        return {"error": "the task finished before the pause took effect"}
    time.sleep(0.2)  # a quiet worker, as after any pause
    task.refresh_from_db()
    started = time.time()
    task_resume(task=task)
    returned = time.time()
    resume_index = Step.objects.filter(task_id=task_id, kind="resume").order_by("-index").values_list(
        "index", flat=True).first()
    step = _wait(lambda: Step.objects.filter(task_id=task_id, index=resume_index + 1).first(), timeout=30)
    if step is None:
        return {"error": "no step after the resume"}
    def worker_done() -> dict | None:
        marks = worker_marks(clock_file, task_id, started)
        return marks if "state_loaded" in marks else None

    marks = _wait(worker_done, timeout=5) or {}
    sent = publish.marks.get(task_id, (None, None))
    timeline = {"publish_start": sent[0], "publish_end": sent[1], "service_returned": returned, **marks,
                "step_stamped": step.created_at.timestamp()}
    return {"service_ms": round((returned - started) * 1000, 3),
            "next_step_ms": round((step.created_at.timestamp() - started) * 1000, 3), "next_kind": step.kind,
            "timeline_ms": {name: round((at - started) * 1000, 3) for name, at in timeline.items() if at}}


class SliceClock:
    """Wall-clock ends of the runner's slice-start phases (lease, state) in this process."""

    def __init__(self) -> None:
        import tasks.runner

        self.marks: dict[str, float] = {}
        for name, label in (("lease_acquire", "lease"), ("load_state", "state")):
            original = getattr(tasks.runner, name)
            setattr(tasks.runner, name, self._timed(original, label))

    def _timed(self, original, label: str):
        def timed(*args, **kwargs):
            try:
                return original(*args, **kwargs)
            finally:
                self.marks.setdefault(label, time.time())
        return timed


def resume_inline_round(user, clock: SliceClock) -> dict:
    """Pause, resume through the service, then the next slice in this thread at once."""
    from django.test import override_settings

    from bench.agentos_driver import create_tasks
    from tasks.models import Step, Task
    from tasks.runner import run_slice
    from tasks.services import task_pause, task_resume

    (task_id,) = create_tasks(owner=user, query=LONG_QUERY, count=1)
    with override_settings(TASK_SLICE_STEPS=2):  # two steps, as in the worker rounds, then the lease is free
        run_slice(task_id, worker_id="bench-inline")
    task = Task.objects.get(pk=task_id)
    task_pause(task=task)  # no lease held: the pause step is written at once
    task.refresh_from_db()
    clock.marks.clear()
    started = time.time()
    task_resume(task=task)
    returned = time.time()
    run_slice(task_id, worker_id="bench-inline")
    resume_index = Step.objects.filter(task_id=task_id, kind="resume").values_list("index", flat=True).first()
    step = Step.objects.filter(task_id=task_id, index=resume_index + 1).first()
    if step is None or {"lease", "state"} - set(clock.marks):
        return {"error": "no step after the resume"}
    at = step.created_at.timestamp()
    return {"service_ms": round((returned - started) * 1000, 3),
            "lease_ms": round((clock.marks["lease"] - returned) * 1000, 3),
            "state_ms": round((clock.marks["state"] - clock.marks["lease"]) * 1000, 3),
            "step_ms": round((at - clock.marks["state"]) * 1000, 3),
            "next_step_ms": round((at - started) * 1000, 3), "next_kind": step.kind}


def active_tasks() -> int:
    from tasks.models import Task

    return Task.objects.filter(status__in=("queued", "running")).count()


def _series(rounds: list[dict], key: str, scale: float = 1.0) -> dict:
    values = [r[key] / scale for r in rounds if key in r]
    return {**harness.summary_ms(values), "max_ms": round(max(values) * 1000, 3) if values else None}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-crash", action="store_true", help="the resume rounds only")
    parser.add_argument("--lease-seconds", type=int, default=None, help="default: the product's")
    parser.add_argument("--requeue-interval", type=float, default=None, help="default: the product's")
    args = parser.parse_args(argv)

    overrides = {}
    if args.lease_seconds is not None:
        overrides["TASK_LEASE_SECONDS"] = str(args.lease_seconds)
    if args.requeue_interval is not None:
        overrides["TASK_REQUEUE_INTERVAL"] = str(args.requeue_interval)
    env = harness.django_environment(DB_NAME, OFFLINE_LLM_LATENCY_MS="0", **overrides)
    load_before = os.getloadavg()[0]
    from django.conf import settings
    services: list[processes.Service] = []
    try:
        user, _ = harness.bench_user()
        slow = harness.child_env(OFFLINE_LLM_LATENCY_MS="200")
        workers = [processes.worker(slow, concurrency=4, name=f"worker{i}") for i in range(2)]
        services = [*workers, processes.beat(slow)]
        for service in services:
            service.start()
        crashes = [] if args.no_crash else [crash_round(user, workers) for _ in range(args.rounds)]
        _wait(lambda: not active_tasks(), timeout=120, interval=0.5)
        for service in services:
            service.stop()
        from bench.worker_clock import clock_file

        fast = processes.worker(harness.child_env(), concurrency=4, name="fast")
        fast.command += ["--include", "bench.worker_clock"]
        services = [fast.start()]
        publish, clocked = PublishClock(), str(clock_file(fast.process.pid))
        resumes = [resume_round(user, publish, clocked) for _ in range(args.rounds)]
        fast.stop()
        services = []
        clock = SliceClock()
        inline = [resume_inline_round(user, clock) for _ in range(args.rounds)]
    finally:
        for service in services:
            service.stop()
        env.close()
    crash = _series(crashes, "seconds")
    resume_service = _series(resumes, "service_ms", 1000)
    resume_next = _series(resumes, "next_step_ms", 1000)
    parts = {name: _series(inline, key, 1000)["median_ms"] for name, key in (
        ("service_call", "service_ms"), ("to_lease_taken", "lease_ms"), ("lease_to_state_loaded", "state_ms"),
        ("state_to_step_committed", "step_ms"), ("total_without_broker", "next_step_ms"))}
    if parts["total_without_broker"] is not None and resume_next["median_ms"] is not None:
        parts["broker_and_worker_pickup"] = round(resume_next["median_ms"] - parts["total_without_broker"], 3)
    names = ("publish_start", "publish_end", "service_returned", "received", "started", "leased", "state_loaded",
             "step_stamped")
    timeline = {name: _series([r["timeline_ms"] for r in resumes if "timeline_ms" in r], name, 1000)["median_ms"]
                for name in names}
    result = {
        "benchmark": "resume",
        "lease_seconds": settings.TASK_LEASE_SECONDS,
        "requeue_interval_s": settings.TASK_REQUEUE_INTERVAL,
        "default_settings": not overrides,
        "kill_to_next_step": crash,
        "resume_service_call": resume_service,
        "resume_to_next_worker_step": resume_next,
        # Medians of the worker rounds, ms from the service call's start (section 2 of the docstring).
        "resume_timeline_median_ms": timeline,
        # Medians of the in-process rounds (section 3 of the docstring), and the difference.
        "resume_breakdown_median_ms": parts,
        "crash_rounds": crashes,
        "resume_rounds": resumes,
        "resume_inline_rounds": inline,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "machine": harness.machine(),
        "meets_target": bool(crash["n"]) and crash["max_ms"] < 5000 and resume_next["median_ms"] < 10,
    }
    return harness.emit("resume", result)


if __name__ == "__main__":
    main()
