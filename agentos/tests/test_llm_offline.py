"""The offline rule set: schema-valid JSON for every default prompt, deterministic."""

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from agentos.llm import LLMConfigurationError, LLMRequest, get_provider, is_offline
from agentos.llm.offline import OfflineProvider
from tools.dispatch import ToolContext, dispatch
from tools.registry import all_tools

DEFAULTS = Path(__file__).resolve().parents[2] / "prompts" / "defaults"
AGENTS = [{"name": "research", "description": "finds facts"}, {"name": "analysis", "description": "numbers"},
          {"name": "synthesis", "description": "writes"}]
TOOLS = [{"name": s.name, "description": s.description, "parameters": s.parameters} for s in all_tools()]


def schema(slug, tools=None):
    loaded = json.loads((DEFAULTS / f"{slug}.schema.json").read_text())
    if slug == "plan":
        loaded["properties"]["subtasks"]["items"]["properties"]["agent"]["enum"] = [a["name"] for a in AGENTS]
    if tools is not None:
        loaded = copy.deepcopy(loaded)
        loaded["oneOf"][0]["properties"]["tool"]["enum"] = tools
    return loaded


def complete(slug, variables, messages=None, response_schema=None):
    request = LLMRequest(messages=messages or [{"role": "system", "content": "prompt"}],
                         response_schema=response_schema or schema(slug), schema_name=slug, variables=variables)
    result = OfflineProvider().complete(request)
    Draft202012Validator(request.response_schema).validate(result.data)
    assert json.loads(result.text) == result.data
    assert result.tokens_out > 0 and result.model == "offline-rules"
    return result.data


def plan(query):
    return complete("plan", {"query": query, "agents": AGENTS, "memory": [], "max_subtasks": 5})["subtasks"]


def test_plan_splits_clauses_and_assigns_agents():
    subtasks = plan("Research the history of the Eiffel Tower, compute the average of 12, 15 and 20, "
                    "then write a short summary.")
    assert [(s["id"], s["agent"]) for s in subtasks] == [("s1", "research"), ("s2", "analysis"), ("s3", "synthesis")]
    assert subtasks[1]["description"] == "Compute the average of 12, 15 and 20"


def test_plan_keeps_lists_of_numbers_together():
    assert [s["description"] for s in plan("Find the population of Spain and calculate 3, 5 and 9")] == [
        "Find the population of Spain", "Calculate 3, 5 and 9"]


def test_plan_has_at_least_one_subtask_and_respects_the_limit():
    assert len(plan("hello")) == 1
    many = complete("plan", {"query": "Find a. Find b. Find c. Find d.", "agents": AGENTS, "max_subtasks": 2})
    assert [s["description"] for s in many["subtasks"]] == ["Find a.", "Find b.; Find c.; Find d."]


def test_plan_is_deterministic():
    query = "Search the origin of chess and summarize it"
    assert plan(query) == plan(query)


def agent(subtask, messages=(), tools=None, steps_left=5, slug="agent_research"):
    names = tools or [t["name"] for t in TOOLS]
    variables = {"query": subtask, "subtask": subtask, "agent": AGENTS[0], "max_steps": 6, "steps_left": steps_left,
                 "tools": [t for t in TOOLS if t["name"] in names]}
    return complete(slug, variables, [{"role": "system", "content": "p"}, {"role": "user", "content": "Task"},
                                      *messages], schema(slug, names))


def tool_arguments_valid(action):
    spec = {t["name"]: t for t in TOOLS}[action["tool"]]
    Draft202012Validator(spec["parameters"]).validate(action["arguments"])


def test_agent_researches_with_web_search():
    action = agent("Find the history of the Eiffel Tower")
    assert action == {"action": "tool", "tool": "web_search", "arguments": {"query": "history of the Eiffel Tower"},
                      "reason": "the subtask needs web_search (matched by the offline rule set)"}
    tool_arguments_valid(action)


def test_agent_falls_back_to_memory_search_when_web_search_is_not_allowed():
    action = agent("Find the history of the Eiffel Tower", tools=["memory_search", "calculator"])
    assert action["tool"] == "memory_search"


def test_agent_uses_data_analysis_and_calculator():
    stats = agent("Compute the average of 12, 15 and 20", slug="agent_analysis")
    assert (stats["tool"], stats["arguments"]) == ("data_analysis", {"numbers": [12, 15, 20]})
    arithmetic = agent("What is 12 * (3 + 4)?", slug="agent_analysis")
    assert (arithmetic["tool"], arithmetic["arguments"]) == ("calculator", {"expression": "12 * (3 + 4)"})
    tool_arguments_valid(stats)
    tool_arguments_valid(arithmetic)


def tool_turn(action, outcome):
    return [{"role": "assistant", "content": json.dumps(action, sort_keys=True)},
            {"role": "user", "content": json.dumps({"tool": action["tool"], **outcome}, sort_keys=True)}]


def test_agent_finishes_with_the_tool_output():
    first = agent("What is 12 * (3 + 4)?")
    done = agent("What is 12 * (3 + 4)?", tool_turn(first, {"ok": True, "result": {"expression": "12 * (3 + 4)",
                                                                                   "result": 84}}))
    assert done["action"] == "finish"
    assert "calculator: 12 * (3 + 4) = 84" in done["result"]


def test_agent_tries_another_tool_after_a_failure():
    first = agent("Find the history of chess")
    second = agent("Find the history of chess", tool_turn(first, {"ok": False, "error": "backend down"}))
    assert (first["tool"], second["tool"]) == ("web_search", "memory_search")


def test_agent_asks_for_confirmation_then_finishes_with_the_answer():
    subtask = "Calculate 2 + 2 and ask me to confirm"
    first = agent(subtask)
    assert first["tool"] == "calculator"
    asked = agent(subtask, tool_turn(first, {"ok": True, "result": {"expression": "2 + 2", "result": 4}}))
    assert asked["action"] == "ask_human" and asked["choices"] == ["yes", "no"]
    assert "2 + 2 = 4" in asked["question"]
    history = [*tool_turn(first, {"ok": True, "result": {"expression": "2 + 2", "result": 4}}),
               {"role": "assistant", "content": json.dumps(asked)},
               {"role": "user", "content": "The person answered: yes"}]
    done = agent(subtask, history)
    assert done["action"] == "finish" and "The person answered: yes" in done["result"]


def test_pure_confirmation_subtask_asks_without_a_tool():
    assert agent("Check with me before sending anything")["action"] == "ask_human"


def test_agent_finishes_on_its_last_step():
    assert agent("Find the history of chess", steps_left=1)["action"] == "finish"


def test_synthesis_agent_uses_earlier_results():
    intro = ("Task: q\nYour subtask (s2, agent synthesis): Write it up\n\nResults of earlier subtasks:\n"
             "- s1 (research, completed) — Find x: x is 42")
    variables = {"query": "q", "subtask": "Write it up", "agent": AGENTS[2], "max_steps": 3, "steps_left": 3,
                 "tools": []}
    done = complete("agent_synthesis", variables, [{"role": "system", "content": "p"},
                                                   {"role": "user", "content": intro}], schema("agent_synthesis", []))
    assert done["action"] == "finish" and "x is 42" in done["result"]


def test_summarize_and_synthesize():
    summary = complete("summarize", {"query": "q", "transcript": "First. Second! Third? Fourth."})
    assert summary == {"summary": "First. Second! Third?"}
    result = complete("synthesize", {"query": "Eiffel facts", "results": [
        {"subtask": "Find x", "agent": "research", "status": "completed", "result": "x is 42"}]})["result"]
    assert result.startswith("## Eiffel facts") and "### 1. Find x (research, completed)" in result
    assert "x is 42" in result and "not a language model" in result


def test_unknown_prompt_gets_a_minimal_valid_instance():
    custom = {"type": "object", "properties": {"label": {"enum": ["a", "b"]}, "n": {"type": "integer"}},
              "required": ["label", "n"]}
    assert complete("classify", {"query": "x"}, response_schema=custom) == {"label": "a", "n": 0}


def test_unsatisfiable_schema_is_a_typed_error():
    impossible = {"type": "object", "properties": {"summary": {"type": "string", "minLength": 5000}},
                  "required": ["summary"]}
    request = LLMRequest(messages=[], response_schema=impossible, schema_name="summarize",
                         variables={"transcript": "short."})
    with pytest.raises(LLMConfigurationError, match="cannot satisfy the 'summarize' schema"):
        OfflineProvider().complete(request)


def test_simulated_latency(settings):
    settings.OFFLINE_LLM_LATENCY_MS = 150
    request = LLMRequest(messages=[], response_schema=schema("summarize"), schema_name="summarize",
                         variables={"transcript": "A."})
    assert OfflineProvider().complete(request).latency_ms >= 150


def test_get_provider(settings):
    assert is_offline() and get_provider().name == "offline"
    assert get_provider() is get_provider()
    settings.LLM_PROVIDER, settings.OPENAI_API_KEY, settings.LLM_MODEL = "openai", "k", "gpt-test"
    provider = get_provider()
    assert (provider.name, provider.model, is_offline()) == ("openai", "gpt-test", False)


@pytest.mark.django_db
def test_rules_drive_real_tools_from_plan_to_synthesis():
    """Plan -> each agent's loop with real dispatch -> synthesis, using tools that need no network."""
    query = "Compute the average of 4, 8 and 15, then calculate 2 ** 10"
    results = []
    for subtask in plan(query):
        history = []
        for _ in range(5):
            action = agent(subtask["description"], history, tools=["calculator", "data_analysis"],
                           slug="agent_analysis")
            if action["action"] != "tool":
                break
            outcome = dispatch(name=action["tool"], arguments=action["arguments"], context=ToolContext(owner_id=None))
            assert outcome.ok, outcome.error
            history += tool_turn(action, {"ok": True, "result": outcome.result})
        assert action["action"] == "finish"
        results.append({"subtask": subtask["description"], "agent": subtask["agent"], "status": "completed",
                        "result": action["result"]})
    final = complete("synthesize", {"query": query, "results": results})["result"]
    assert "mean 9.0" in final and "2 ** 10 = 1024" in final


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "tool", "arguments", "answer"), [
    ("What is 2 plus 2?", "calculator", {"expression": "2 + 2"}, 4),
    ("What is 7 times 6?", "calculator", {"expression": "7 * 6"}, 42),
    ("What is 12 % of 250?", "calculator", {"expression": "(12 / 100 * 250)"}, 30),
    ("What is 20 percent of 80?", "calculator", {"expression": "(20 / 100 * 80)"}, 16),
    ("What is the square root of 81?", "calculator", {"expression": "sqrt(81)"}, 9),
    ("What is 2 to the power of 10?", "calculator", {"expression": "2 ** 10"}, 1024),
    ("How much is 100 divided by 8?", "calculator", {"expression": "100 / 8"}, 12.5),
    ("What is 15 minus 4?", "calculator", {"expression": "15 - 4"}, 11),
    ("What is 9 squared?", "calculator", {"expression": "9 ** 2"}, 81),
    ("What is the average of 3, 5 and 10?", "data_analysis", {"numbers": [3, 5, 10]}, None),
])
def test_arithmetic_phrasings_go_to_the_calculator(query, tool, arguments, answer):
    [subtask] = plan(query)
    assert subtask["agent"] == "analysis"
    action = agent(subtask["description"], tools=["calculator", "data_analysis", "memory_search"],
                   slug="agent_analysis")
    assert (action["tool"], action["arguments"]) == (tool, arguments)
    outcome = dispatch(name=tool, arguments=arguments, context=ToolContext(owner_id=None))
    assert outcome.ok, outcome.error
    if answer is not None:
        assert outcome.result["result"] == pytest.approx(answer)
    else:
        assert outcome.result["mean"] == pytest.approx(6)


def test_a_year_range_is_not_arithmetic():
    assert plan("Find what happened in Lisbon 1990-2000")[0]["agent"] == "research"
