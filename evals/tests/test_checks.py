import time

import pytest

from evals.checks import Output, check_problems, checks_problems, passed, verdict
from evals.jsonpath import Missing, PathError, resolve
from evals.regexguard import MAX_TEXT, regex_problem, safe_search

PLAN = {"subtasks": [{"id": "s1", "description": "Find Lisbon's population", "agent": "research"},
                     {"id": "s2", "description": "Compare", "agent": "analysis"}], "score": 0.75}
OUT = Output(data=PLAN, text='{"subtasks": "..."}')


def run(check):
    assert check_problems(check) == []
    return verdict(check, OUT)["verdict"]


def test_json_path():
    assert resolve(PLAN, "$.subtasks[0].agent") == "research"
    assert resolve(PLAN, "$.subtasks[-1].id") == "s2"
    assert resolve(PLAN, "$.subtasks[*].agent") == ["research", "analysis"]
    assert resolve(PLAN, "$.subtasks.length()") == 2
    assert resolve({"a b": 1}, '$["a b"]') == 1
    with pytest.raises(Missing):
        resolve(PLAN, "$.subtasks[5]")
    with pytest.raises(PathError):
        resolve(PLAN, "subtasks")


@pytest.mark.parametrize(("check", "expected"), [
    ({"type": "contains", "value": "Lisbon", "path": "$.subtasks[*].description"}, "pass"),
    ({"type": "contains", "value": "lisbon", "path": "$.subtasks[*].description"}, "fail"),
    ({"type": "contains", "value": "lisbon", "path": "$.subtasks[*].description", "ignore_case": True}, "pass"),
    ({"type": "not_contains", "value": "synthesis", "path": "$.subtasks[*].agent"}, "pass"),
    ({"type": "not_contains", "value": "research", "path": "$.subtasks[*].agent"}, "fail"),
    ({"type": "regex", "pattern": "^s[0-9]+$", "path": "$.subtasks[1].id"}, "pass"),
    ({"type": "regex", "pattern": "^x", "path": "$.subtasks[1].id"}, "fail"),
    ({"type": "json_path_equals", "path": "$.subtasks[0].agent", "value": "research"}, "pass"),
    ({"type": "json_path_equals", "path": "$.subtasks[0].agent", "value": "analysis"}, "fail"),
    ({"type": "json_path_equals", "path": "$.nope", "value": 1}, "error"),
    ({"type": "json_schema", "schema": {"type": "object", "required": ["subtasks"]}}, "pass"),
    ({"type": "json_schema", "schema": {"type": "object", "required": ["result"]}}, "fail"),
    ({"type": "numeric", "path": "$.score", "value": 0.7, "tolerance": 0.06}, "pass"),
    ({"type": "numeric", "path": "$.score", "value": 0.7, "tolerance": 0.01}, "fail"),
    ({"type": "numeric", "path": "$.subtasks.length()", "value": 2}, "pass"),
    ({"type": "numeric", "path": "$.subtasks[0].agent", "value": 2}, "fail"),
])
def test_verdicts(check, expected):
    assert run(check) == expected


def test_true_is_not_one():
    check = {"type": "json_path_equals", "path": "$.x", "value": 1}
    assert verdict(check, Output({"x": True}, ""))["verdict"] == "fail"


def test_rubric_without_grader_is_skipped_and_skips_do_not_fail():
    result = verdict({"type": "rubric", "rubric": "Be nice."}, OUT)
    assert result["verdict"] == "skipped"
    assert passed([result, {"verdict": "pass"}]) and not passed([result, {"verdict": "error"}])


@pytest.mark.parametrize("check", [
    {"type": "contains"}, {"type": "nope", "value": "x"}, {"type": "contains", "value": ""},
    {"type": "contains", "value": "x", "extra": 1}, {"type": "regex", "pattern": "(a+)+$"},
    {"type": "json_schema", "schema": {"type": "nonsense"}}, {"type": "numeric", "path": "$.x", "value": "1"},
    {"type": "numeric", "path": "$.x", "value": 1, "tolerance": -1}, {"type": "contains", "value": "x", "path": "x"},
    {"type": "rubric", "rubric": "  "}, "contains",
])
def test_invalid_checks_are_refused(check):
    assert check_problems(check)


def test_checks_list_limits():
    assert checks_problems("x") == ["checks must be a list"]
    assert checks_problems([{"type": "contains", "value": "a"}] * 21)
    assert checks_problems([{"type": "contains", "value": "a"}, {"type": "x"}])[0].startswith("check 2:")


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w*\s?)*x", r"(x|xy)*z", r"(a)\1", r"(?:a{1,5})+", "a" * 301, "("])
def test_risky_or_invalid_patterns_are_refused(pattern):
    assert regex_problem(pattern)


@pytest.mark.parametrize("pattern", [r"^s[0-9]+$", r"(a|b)+c", r"(\d{3}-)+\d", r"research|analysis", r"\bLisbon\b"])
def test_ordinary_patterns_are_accepted(pattern):
    assert regex_problem(pattern) is None


def test_refused_pattern_would_really_backtrack_and_text_is_capped():
    # The classic catastrophic shape is refused before it can run; a safe one runs on capped text.
    with pytest.raises(ValueError):
        safe_search(r"(a+)+$", "a" * 40 + "b")
    assert not safe_search(r"b$", "a" * MAX_TEXT + "b")


def ref_chain(depth: int) -> dict:
    """A 1 KB schema whose validation takes 2**depth steps: each level is an anyOf of two
    references to the next, and the last level refuses the instance."""
    defs = {f"a{n}": {"anyOf": [{"$ref": f"#/$defs/a{n + 1}"}] * 2} for n in range(depth)}
    return {"$defs": defs | {f"a{depth}": {"type": "string"}}, "$ref": "#/$defs/a0"}


@pytest.mark.parametrize(("check", "output"), [
    # Each takes seconds to minutes in the caller's interpreter (doubling with each character
    # or level); the static guard accepts every one of them.
    ({"type": "regex", "pattern": r"(.|\s)*END"}, Output(None, " " * 26)),
    ({"type": "regex", "pattern": r"(a|aa){1,100}b"}, Output(None, "a" * 37)),
    ({"type": "json_schema", "schema": {"type": "string", "pattern": "^(a+)+$"}}, Output("a" * 27 + "!", "")),
    ({"type": "json_schema", "schema": ref_chain(16)}, Output(5, "5")),
], ids=["overlapping-alternation", "bounded-repeat", "schema-pattern", "schema-ref-chain"])
def test_a_check_too_slow_for_its_output_is_stopped_and_says_it_timed_out(settings, check, output):
    settings.EVAL_CHECK_TIMEOUT_SECONDS = 0.5
    assert "pattern" not in check or regex_problem(check["pattern"]) is None
    started = time.monotonic()
    result = verdict(check, output)
    elapsed = time.monotonic() - started
    assert result["verdict"] == "error", result
    assert result["message"].startswith("timed out: the check did not finish within 0.5 s"), result
    assert elapsed < 15, elapsed  # the timeout, plus starting a check process on a busy machine
    assert not passed([result])
    # The check process that was stopped is replaced: the next check is served.
    assert verdict({"type": "regex", "pattern": "^s[0-9]+$", "path": "$.subtasks[1].id"}, OUT)["verdict"] == "pass"


def test_bounded_checks_keep_their_verdicts_and_errors():
    assert verdict({"type": "regex", "pattern": "x", "path": "$.nope"}, OUT)["verdict"] == "error"
    failed = verdict({"type": "json_schema", "schema": {"type": "object", "required": ["result"]}}, OUT)
    assert failed == {"type": "json_schema", "verdict": "fail", "message": "(root): 'result' is a required property"}


@pytest.mark.parametrize("schema", [
    {"type": "string", "pattern": "^(a+)+$"},
    {"type": "object", "properties": {"name": {"type": "string", "pattern": r"(\w*\s?)*x"}}},
    {"type": "object", "patternProperties": {"(x|xy)*z": {"type": "string"}}},
    {"$defs": {"id": {"pattern": r"(a)\1"}}, "$ref": "#/$defs/id"},
    {"type": "array", "items": {"anyOf": [{"type": "string", "pattern": "("}]}},
])
def test_risky_schema_patterns_are_refused_when_saved(schema):
    problems = check_problems({"type": "json_schema", "schema": schema})
    assert problems and ("schema pattern" in problems[0] or "invalid JSON Schema" in problems[0]), problems


def test_schema_patterns_are_found_only_where_they_are_patterns():
    schema = {"type": "object", "properties": {"pattern": {"type": "string", "pattern": "^[a-z]+$"},
                                               "kind": {"const": {"pattern": "(a+)+$"}, "enum": ["(a+)+"]}}}
    assert check_problems({"type": "json_schema", "schema": schema}) == []


@pytest.mark.parametrize("kind", [[], {}, ["regex"], {"regex": 1}, 3, True])
def test_a_type_that_is_not_a_string_is_a_validation_problem(kind):
    problems = check_problems({"type": kind, "value": "x"})
    assert problems == ["type must be a string: one of contains, not_contains, regex, json_path_equals, "
                        "json_schema, numeric, rubric"]
    assert checks_problems([{"type": kind}]) == [f"check 1: {problems[0]}"]
    assert check_problems({"value": "x"})[0].startswith("a check needs a type: one of contains")
