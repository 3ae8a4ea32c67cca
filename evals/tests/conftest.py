"""Fixtures of the evals tests: the plan prompt with two versions, the shipped dataset, a
loopback OpenAI-compatible server that answers according to the version in the prompt."""

from __future__ import annotations

import json
import time

import pytest

from agentos.llm.fake_server import FakeLLMServer, chat_completion

MARKER_B = "Always split the request into exactly three subtasks."
GOOD = {
    "Compare the population growth of Lisbon and Porto since 2010.": [
        ("research", "Find the population of Lisbon and Porto in 2010 and today."),
        ("analysis", "Compare the growth of both cities.")],
    "What is 17 multiplied by 23?": [("analysis", "Compute 17 * 23.")],
    "Write a haiku about autumn rain.": [("synthesis", "Write a haiku about autumn rain.")],
    "Find the three largest moons of Jupiter and rank them by diameter.": [
        ("research", "Find the diameters of the largest moons of Jupiter."), ("analysis", "Rank them.")],
    "Summarise the main causes of the French Revolution.": [
        ("research", "List the main causes of the French Revolution."), ("synthesis", "Summarise them.")],
}


def plan_json(pairs) -> str:
    return json.dumps({"subtasks": [{"id": f"s{n}", "description": text, "agent": agent}
                                    for n, (agent, text) in enumerate(pairs, 1)]})


class PlanServer(FakeLLMServer):
    """Replies by content, not by queue order, so concurrent eval jobs get the right answer:
    version A plans well; version B (its body carries MARKER_B) always plans three research
    subtasks, which the shipped checks catch for the simple queries."""

    delay_s = 0.0  # time each answer takes, to see how many requests overlap
    in_flight = max_in_flight = 0

    def _next(self, path, body):
        with self._lock:
            self.requests.append({"path": path, "body": body})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            return self._answer(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, body):
        schema_name = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
        if schema_name == "eval_rubric":
            return chat_completion(json.dumps({"pass": True, "reason": "self-contained subtasks"}))
        messages = body["messages"]
        system, query = messages[0]["content"], messages[1]["content"]
        pairs = GOOD.get(query, [("research", query)])
        if MARKER_B in system:
            pairs = [("research", f"Look into part {n} of: {query}") for n in (1, 2, 3)]
        return chat_completion(plan_json(pairs), prompt_tokens=100 + (50 if MARKER_B in system else 0),
                               completion_tokens=20 * len(pairs))


@pytest.fixture
def plan_server(settings):
    with PlanServer() as server:
        settings.LLM_PROVIDER, settings.OPENAI_API_KEY = "openai", "test-key"
        settings.OPENAI_BASE_URL, settings.LLM_MODEL = server.url + "/v1", "fake-model"
        settings.LLM_MAX_RETRIES = 0
        yield server


@pytest.fixture
def plan_versions(db):
    """plan@1 (shipped, active) and plan@2 (the body plus MARKER_B)."""
    import prompts.defaults
    from prompts.models import PromptVersion
    from prompts.services import prompt_version_create

    prompts.defaults.load_defaults()
    first = PromptVersion.objects.select_related("template").get(template__slug="plan", number=1)
    second = prompt_version_create(template=first.template, body=first.body + "\n" + MARKER_B, note="three always")
    return first, second


@pytest.fixture
def plan_dataset(plan_versions):
    from evals.defaults import load_dataset
    from evals.models import Dataset

    load_dataset("plan-smoke")
    return Dataset.objects.get(name="plan-smoke", owner__isnull=True)
