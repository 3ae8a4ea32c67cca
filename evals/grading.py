"""Model-graded rubric checks: the configured provider judges an output against a rubric.

On the offline provider (a rule set, not a model) a rubric is ``skipped`` with a note, so a
dataset with rubrics still runs in CI without a key; the item's verdict then rests on its
other checks.
"""

from __future__ import annotations

import json

from agentos.llm import LLMError, LLMRequest, get_provider, is_offline
from evals.checks import Output

GRADE_SCHEMA = {
    "type": "object",
    "properties": {"pass": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["pass", "reason"],
    "additionalProperties": False,
}
GRADER = ("You grade the output of another model against a rubric. Read the request, the output and the rubric; "
          "answer pass=true only when the output meets every point of the rubric. Give a one-sentence reason.\n\n"
          "# Rubric\n{rubric}")
OFFLINE_NOTE = "skipped: the offline provider cannot grade a rubric; set LLM_PROVIDER to a model to grade it"


def grade(check: dict, output: Output) -> dict:
    """{"verdict", "message"} for one rubric check."""
    if is_offline():
        return {"verdict": "skipped", "message": OFFLINE_NOTE}
    shown = output.text if output.data is None else json.dumps(output.data, ensure_ascii=False, indent=2)
    request = LLMRequest(
        messages=[{"role": "system", "content": GRADER.format(rubric=check["rubric"])},
                  {"role": "user", "content": f"# Request\n{output.query or '(none)'}\n\n# Output\n{shown}"}],
        response_schema=GRADE_SCHEMA, schema_name="eval_rubric", temperature=0.0, max_tokens=300)
    try:
        result = get_provider().complete(request)
    except LLMError as error:
        return {"verdict": "error", "message": f"grader: {error.compact()}"}
    data = result.data or {}
    return {"verdict": "pass" if data.get("pass") else "fail", "message": str(data.get("reason", ""))[:300]}
