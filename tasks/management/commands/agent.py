"""`manage.py agent run "query"`: start a task from the terminal and follow it live.

The task is created through the same service as the API (trigger ``cli``) and runs on the
Celery workers. The command polls the step log (every 0.3 s), shows a progress bar and one
line per step, and prints the result. Ctrl-C detaches without cancelling the task.

`manage.py agent show|pause|resume|cancel|retry|respond <task id> --user NAME`: read or
control a task as that user. Every command acts as the user named by ``--user`` (default:
the first superuser) with their roles, like the API: ``run`` needs operator in the workspace
(``--workspace``, default their personal one), ``show`` any role, the controls and
``respond`` operator (workspaces.task_actions, which also writes the audit row); a task
outside their workspaces is "not found".

`manage.py agent replay <task id | export.json | folder> ...`: replay recorded runs with the
pure engine (tasks/timetravel/replay.py, tasks/timetravel/replay_command.py); the exit code
is 1 when any run diverges, 2 when a source cannot be read.
"""

from __future__ import annotations

import json
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agentos.api import ApplicationError
from tasks.models import Task, TaskStatus, Trigger
from tasks.selectors import steps_after, task_get_for_user
from workspaces.task_actions import CONTROLS, task_act, task_create_as

POLL_SECONDS = 0.3


def step_line(step) -> str:
    """One line describing a step for the terminal."""
    data_in, data_out = step.input or {}, step.output if isinstance(step.output, dict) else {}
    where = " ".join(part for part in (step.subtask_id, step.agent) if part)
    if step.status == "error":
        detail = f"error: {step.error}"
    elif step.kind == "plan":
        subtasks = data_out.get("subtasks", [])
        detail = "; ".join(f"{s.get('id')} {s.get('agent')}: {s.get('description')}" for s in subtasks)
    elif step.kind == "llm":
        action = data_out.get("action")
        arguments = json.dumps(data_out.get("arguments", {}))
        detail = f"-> {data_out.get('tool')} {arguments}" if action == "tool" else action
    elif step.kind == "tool":
        detail = f"{data_in.get('tool')}: {json.dumps(data_out.get('result'), default=str)}"
    elif step.kind == "human_request":
        detail = f"asks: {data_in.get('question')}"
    elif step.kind == "human_response":
        detail = f"answer: {data_in.get('answer', data_in.get('approve'))}"
    elif step.kind in ("summary", "synthesis", "result"):
        detail = str(data_out.get("summary") or data_out.get("result") or "")
    else:
        detail = ""
    line = f"#{step.index:<3} {step.kind:<14} {where:<14} {' '.join(str(detail).split())}"
    return line if len(line) <= 160 else line[:159] + "…"


class Command(BaseCommand):
    help = ("Run an agent task from the terminal: agent run \"query\" [--user NAME] [--workspace ID|SLUG] [--no-wait] "
            "[--timeout S]; read or control one: agent show|pause|resume|cancel|retry <task id> [--user NAME], "
            "agent respond <task id> (--answer TEXT | --approve | --deny) [--comment TEXT] [--user NAME]; "
            "replay recorded runs: agent replay <task id | export.json | folder> ... [--prompts active] [--json]")

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="create a task and follow it")
        run.add_argument("query")
        run.add_argument("--user", help="owner of the task (default: the first superuser)")
        run.add_argument("--workspace", help="id or slug of the workspace the task goes to (you must be an "
                                             "operator there; default: your personal workspace)")
        run.add_argument("--wait", dest="wait", action="store_true", default=True, help="follow the task (default)")
        run.add_argument("--no-wait", dest="wait", action="store_false", help="print the task id and return")
        run.add_argument("--timeout", type=float, default=600.0, help="stop following after S seconds")
        from tasks.timetravel.replay_command import add_replay_arguments

        add_replay_arguments(sub.add_parser("replay", help="replay recorded runs with the engine (no calls)"))
        for action, text in (("show", "print a task's status and result (any role)"),
                             *((control, f"{control} a task (operators)") for control in CONTROLS),
                             ("respond", "answer a task's question or approval (operators)")):
            command = sub.add_parser(action, help=text)
            command.add_argument("task_id")
            command.add_argument("--user", help="act as this user, with their roles (default: the first superuser)")
            if action == "respond":
                answer = command.add_mutually_exclusive_group(required=True)
                answer.add_argument("--answer", help="the answer to the question")
                answer.add_argument("--approve", dest="approve", action="store_const", const=True,
                                    help="approve the pending tool call")
                answer.add_argument("--deny", dest="approve", action="store_const", const=False,
                                    help="deny the pending tool call")
                command.add_argument("--comment", default="", help="a note kept with an approval or denial")

    def handle(self, *args, **options) -> None:
        if options["action"] == "replay":
            from tasks.timetravel.replay_command import replay_sources

            code, summary = replay_sources(options, self.stdout, self.style)
            if code:
                raise CommandError(summary, returncode=code)
            return
        owner = self._owner(options.get("user"))
        if options["action"] != "run":
            return self._act(owner, options)
        try:
            task = task_create_as(actor=owner, workspace_id=self._workspace_id(options.get("workspace")),
                                  query=options["query"], trigger=Trigger.CLI, trigger_details={"command": "agent run"})
        except ApplicationError as error:
            raise CommandError(error.message)
        self.stdout.write(f"task {task.id} queued")
        if not options["wait"]:
            return
        try:
            self._follow(task, options["timeout"], owner)
        except KeyboardInterrupt:
            self.stdout.write(f"\ndetached; task {task.id} keeps running (it was not cancelled)")

    @staticmethod
    def _workspace_id(value: str | None):
        """A workspace named by id or slug -> its id (unknown values are left for the check to refuse)."""
        if value is None or value.isdigit():
            return value
        from workspaces.models import Workspace

        return Workspace.objects.filter(slug=value).values_list("pk", flat=True).first() or value

    def _act(self, user, options) -> None:
        """show, a control or respond, as ``user`` (the same role checks and audit as the API)."""
        action = options["action"]
        try:
            task = task_get_for_user(user=user, task_id=options["task_id"])
            if action == "respond":
                arguments = ({"answer": options["answer"]} if options.get("answer") is not None
                             else {"approve": options["approve"], "comment": options["comment"]})
                task = task_act(actor=user, task=task, action="respond", **arguments)
            elif action != "show":
                task = task_act(actor=user, task=task, action=action)
        except ApplicationError as error:
            raise CommandError(f"{error.message} ({error.code})")
        self.stdout.write(f"task {task.id} {task.status}" + (f": {task.error}" if task.error else ""))
        if action == "show":
            if task.waiting_for:
                self.stdout.write(f"waiting for: {(task.waiting_for or {}).get('question')}")
            if task.result:
                self.stdout.write(task.result)

    def _owner(self, name: str | None):
        users = get_user_model().objects
        if name:
            owner = users.filter(username=name).first()
            if owner is None:
                raise CommandError(f"no user named {name!r}")
            return owner
        owner = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if owner is None:
            raise CommandError("no superuser exists; pass --user NAME")
        return owner

    def _follow(self, task: Task, timeout: float, user) -> None:
        deadline, last = time.monotonic() + timeout, -1
        with tqdm(total=100, unit="%", file=self.stdout._out, dynamic_ncols=True, leave=False,
                  bar_format="{l_bar}{bar}| {n:.0f}%") as bar:
            while True:
                for step in steps_after(task=task, after=last):
                    bar.write(step_line(step), file=self.stdout._out)
                    last = step.index
                task.refresh_from_db()
                bar.n = round(task.progress * 100)
                bar.set_description(task.status)
                bar.refresh()
                if task.finished:
                    break
                if task.status == TaskStatus.WAITING_HUMAN and task.waiting_for and sys.stdin.isatty():
                    bar.clear()
                    self._answer(task, user)
                    continue
                if time.monotonic() > deadline:
                    raise CommandError(f"task {task.id} is still {task.status} after {timeout:g}s; it keeps running")
                time.sleep(POLL_SECONDS)
        self._report(task)

    def _answer(self, task: Task, user) -> None:
        waiting = task.waiting_for or {}
        choices = waiting.get("choices") or []
        prompt = f"{waiting.get('question')} " + (f"[{'/'.join(choices)}] " if choices else "") + "> "
        answer = input(prompt).strip()
        try:
            task_act(actor=user, task=task, action="respond",
                     answer=answer if waiting.get("reason") == "approval" else answer or "(no answer)")
        except ApplicationError as error:
            self.stderr.write(error.message)

    def _report(self, task: Task) -> None:
        if task.status == TaskStatus.COMPLETED:
            self.stdout.write(self.style.SUCCESS(f"completed in {task.step_count} steps\n"))
            self.stdout.write(task.result)
            return
        message = f"task {task.id} {task.status}" + (f": {task.error}" if task.error else "")
        raise CommandError(message)
