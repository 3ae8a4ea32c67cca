"""``manage.py agent replay`` over the shipped sample exports (tasks/tests/runs/): a folder of
exported runs is a regression suite for engine and prompt changes."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tasks.timetravel.export import task_export, task_import
from tasks.timetravel.replay import replay_document

RUNS = Path(__file__).parent / "runs"
SAMPLES = sorted(RUNS.glob("*.json"))
RUN = ("format", "version", "task", "steps", "prompts")


def same_run(document: dict) -> dict:
    """The run of an export, with prompt versions named by content rather than by label: an
    import matches versions by content and creates missing ones under the next free number
    of this installation, so ``agent_research@1`` may come back as ``agent_research@2``.
    A template's declared variables and response schema are the installation's (an import
    does not change an existing template), like ``engine`` and ``tools``."""
    names = {p["label"]: (p["slug"], p["body"], p["temperature"], p["max_tokens"]) for p in document["prompts"]}
    run = {k: copy.deepcopy(document[k]) for k in RUN}
    template = {"label": None, "number": None, "required_variables": None, "optional_variables": None,
                "response_schema": None}
    run["prompts"] = sorted(({**p, **template} for p in run["prompts"]),
                            key=lambda p: (p["slug"], p["body"]))
    for step in run["steps"]:
        step["prompt_version"] = names.get(step["prompt_version"], step["prompt_version"])
    return run


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def replay(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("agent", "replay", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_the_samples_cover_completed_and_cancelled_runs_with_questions_and_side_effects():
    documents = [load(path) for path in SAMPLES]
    assert len(documents) >= 3
    assert {d["task"]["status"] for d in documents} >= {"completed", "cancelled"}
    kinds = {step["kind"] for d in documents for step in d["steps"]}
    assert {"plan", "llm", "tool", "human_request", "human_response", "synthesis", "result", "cancel"} <= kinds
    assert any(tool["side_effects"] for d in documents for tool in d["tools"])


@pytest.mark.parametrize("path", SAMPLES, ids=[path.stem for path in SAMPLES])
def test_export_import_replay_of_each_sample_reports_no_divergence(path, agents_defaults, user):
    document = load(path)
    assert replay_document(document).divergence is None
    imported = task_import(owner=user, document=document)
    again = task_export(task=imported)
    # The run itself; engine and tools describe this installation's agents and tools today.
    assert same_run(again) == same_run(document)
    code, out = replay(str(imported.pk))
    assert code == 0, out
    assert "no divergence" in out


def test_a_folder_of_exports_replays_as_a_suite(tmp_path):
    code, out = replay(str(RUNS))
    assert code == 0, out
    assert f"{len(SAMPLES)} runs replayed, no divergence" in out
    # An engine that now decides differently: simulated by a recorded run that did something else.
    changed = load(RUNS / "arithmetic-and-statistics.json")
    tool = next(step for step in changed["steps"] if step["kind"] == "tool")
    tool["input"]["tool"] = "web_search"
    (tmp_path / "a.json").write_text(json.dumps(load(RUNS / "research-history.json")))
    (tmp_path / "b.json").write_text(json.dumps(changed))
    code, out = replay(str(tmp_path))
    assert code == 1
    assert f"b.json: diverges at step {tool['index']}" in out and "1 of 2 runs diverged" in out
    assert '"tool": "web_search"' in out and '"action": "RunTool"' in out  # both actions


def test_json_reports_and_unreadable_sources(tmp_path):
    code, out = replay(str(SAMPLES[0]), "--json")
    report = json.loads(out.splitlines()[0])
    assert code == 0 and report["ok"] and report["divergence"] is None
    (tmp_path / "bad.json").write_text('{"format": "agentos.run", "version": 99}')
    assert replay(str(tmp_path / "bad.json"))[0] == 2
    (tmp_path / "broken.json").write_text("{")
    assert replay(str(tmp_path / "broken.json"))[0] == 2
    assert replay("no-such-thing")[0] == 2


@pytest.mark.django_db
def test_prompts_active_reports_the_token_difference_per_model_step(agents_defaults):
    from prompts.models import PromptTemplate
    from prompts.services import prompt_version_activate, prompt_version_create

    path = RUNS / "research-history.json"
    code, out = replay(str(path), "--prompts", "active")
    assert code == 0, out
    plan = next(step for step in load(path)["steps"] if step["kind"] == "plan")
    assert f"step {plan['index']}: {plan['prompt_version']}" in out and "(+0)" in out
    assert "not reproduced" not in out  # the recorded prompts rebuild to what the steps sent
    template = PromptTemplate.objects.get(slug="plan")
    longer = prompt_version_create(template=template, body=template.versions.get(is_active=True).body +
                                   "\nPrefer fewer, larger subtasks when the request is short.")
    prompt_version_activate(version=longer)
    code, out = replay(str(path), "--prompts", "active", "--json")
    diffs = {d["index"]: d for d in json.loads(out)["prompts"]}
    assert code == 0
    assert diffs[plan["index"]]["active_label"] == longer.label and diffs[plan["index"]]["difference"] > 0
    # The template now needs a variable the recorded call did not have: the run would fail now.
    template.required_variables = [*template.required_variables, "audience"]
    template.save()
    code, out = replay(str(path), "--prompts", "active")
    assert code == 1 and f"step {plan['index']}: {plan['prompt_version']}: " in out and "audience" in out
    assert replay("00000000-0000-0000-0000-000000000000")[0] == 2


def test_replay_needs_no_database_for_a_file():
    """The engine replay of a file reads nothing but the file (no django_db mark here: any
    query would fail the test)."""
    document = copy.deepcopy(load(SAMPLES[0]))
    assert replay_document(document).ok
