import json

import pytest
from jsonschema import Draft202012Validator

from prompts import defaults
from prompts.defaults import DEFAULT_PROMPTS, load_defaults
from prompts.models import PromptTemplate, PromptVersion
from prompts.services import prompt_render, prompt_version_activate, prompt_version_create

SLUGS = {"plan", "agent_research", "agent_analysis", "agent_synthesis", "summarize", "synthesize"}


@pytest.fixture
def shipped_dir(db, tmp_path, monkeypatch):
    """A copy of the shipped files that a test may change, as a new release would."""
    for path in defaults.DEFAULTS_DIR.iterdir():
        (tmp_path / path.name).write_text(path.read_text())
    monkeypatch.setattr(defaults, "DEFAULTS_DIR", tmp_path)
    return tmp_path


def test_fresh_install_gets_every_default_prompt_active(db):
    assert load_defaults() == "6 templates: 6 created, 0 updated, 0 unchanged"
    assert set(PromptTemplate.objects.values_list("slug", flat=True)) == SLUGS
    for template in PromptTemplate.objects.all():
        [version] = template.versions.all()
        assert version.is_active and version.number == 1 and version.origin == "shipped"
        assert version.token_count > 50
        Draft202012Validator.check_schema(template.response_schema)


def test_rerun_never_duplicates(db):
    load_defaults()
    before = list(PromptVersion.objects.order_by("pk").values_list("pk", "number", "body", "is_active"))
    assert load_defaults() == "6 templates: 0 created, 0 updated, 6 unchanged"
    assert list(PromptVersion.objects.order_by("pk").values_list("pk", "number", "body", "is_active")) == before


def test_every_default_renders_with_its_sample_and_asks_for_json_only(db):
    load_defaults()
    for default in DEFAULT_PROMPTS:
        rendered = prompt_render(slug=default.slug, variables=default.sample)
        assert "ONLY a JSON object" in rendered.text
        assert "{{" not in rendered.text and "\n\n\n" not in rendered.text
        assert rendered.tokens < 1200


def test_agent_schema_accepts_the_three_actions_and_nothing_else(db):
    load_defaults()
    schema = PromptTemplate.objects.get(slug="agent_research").response_schema
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"action": "tool", "tool": "calculator", "arguments": {"x": 1}, "reason": "sum"})
    assert validator.is_valid({"action": "ask_human", "question": "Which city?", "choices": ["A", "B"]})
    assert validator.is_valid({"action": "finish", "result": "done"})
    assert not validator.is_valid({"action": "finish"})
    assert not validator.is_valid({"action": "tool", "tool": "calculator", "arguments": {}, "reason": "x",
                                   "result": "mixed"})
    plan = Draft202012Validator(PromptTemplate.objects.get(slug="plan").response_schema)
    assert plan.is_valid({"subtasks": [{"id": "s1", "description": "Find it", "agent": "research"}]})
    assert not plan.is_valid({"subtasks": []})


def test_changed_shipped_body_adds_a_version_when_nobody_wrote_a_newer_one(shipped_dir):
    load_defaults()
    (shipped_dir / "summarize.j2").write_text("Summarise {{ transcript }} for {{ query }}. Answer with ONLY JSON.")
    assert load_defaults() == "6 templates: 0 created, 1 updated, 5 unchanged"
    template = PromptTemplate.objects.get(slug="summarize")
    assert list(template.versions.values_list("number", "is_active", "origin")) == [
        (2, True, "shipped"), (1, False, "shipped")]
    assert load_defaults().endswith("0 updated, 6 unchanged")


def test_user_versions_and_activation_are_never_touched(shipped_dir, staff_user):
    load_defaults()
    template = PromptTemplate.objects.get(slug="synthesize")
    mine = prompt_version_create(template=template, body="My own {{ query }} {{ results }}", created_by=staff_user)
    (shipped_dir / "synthesize.j2").write_text("New shipped {{ query }} {{ results }}")
    load_defaults()
    assert list(template.versions.values_list("number", "is_active")) == [(2, False), (1, True)]
    mine.refresh_from_db()
    assert mine.body == "My own {{ query }} {{ results }}"


def test_update_does_not_steal_activation_from_an_older_choice(shipped_dir):
    load_defaults()
    template = PromptTemplate.objects.get(slug="plan")
    (shipped_dir / "plan.j2").write_text("Plan v2 {{ query }}")
    load_defaults()
    prompt_version_activate(version=template.versions.get(number=1))  # staff went back to v1
    (shipped_dir / "plan.j2").write_text("Plan v3 {{ query }}")
    load_defaults()
    assert list(template.versions.values_list("number", "is_active")) == [(3, False), (2, False), (1, True)]


def test_schema_updates_only_when_nobody_edited_it(shipped_dir):
    load_defaults()
    new_schema = {"type": "object", "properties": {"summary": {"type": "string"}, "open_questions": {
        "type": "array"}}, "required": ["summary"]}
    (shipped_dir / "summarize.schema.json").write_text(json.dumps(new_schema))
    load_defaults()
    assert PromptTemplate.objects.get(slug="summarize").response_schema == new_schema

    template = PromptTemplate.objects.get(slug="synthesize")
    template.response_schema = {"type": "object"}  # edited by staff
    template.save()
    (shipped_dir / "synthesize.schema.json").write_text(json.dumps({"type": "object", "required": ["result"]}))
    load_defaults()
    assert PromptTemplate.objects.get(slug="synthesize").response_schema == {"type": "object"}
