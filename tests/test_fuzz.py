"""API fuzz: schemathesis generates requests from /api/schema/ against a live daphne.

Every operation is called with valid and invalid data under a valid token; a response
must never be a 5xx and must match the schema (status code documented or not, the body of
a documented status must conform). Then every operation that takes a JSON body gets the
hostile bodies a generator never produces (HOSTILE_BODIES: ~1,000 levels of nesting,
non-finite numbers, NUL and lone surrogates), which must be a 4xx in the error shape.
A worker runs too, so the tasks the fuzzer creates finish and /api/v1/execute returns
instead of waiting for its timeout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(480)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


HOSTILE_BODIES = {
    "deep nesting": "[" * 1000 + "]" * 1000,
    "deep object": '{"query": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}",
    "1e400": '{"query": "q", "content": "c", "answer": "a", "n": 1e400}',
    "-1e400": '{"query": -1e400}',
    "NaN": '{"query": "q", "content": "c", "x": NaN}',
    "Infinity": '{"query": "q", "content": "c", "x": Infinity}',
    "NUL": '{"query": "a\\u0000b", "content": "a\\u0000b", "answer": "a\\u0000b"}',
    "lone surrogate": '{"query": "a\\ud800b", "content": "a\\ud800b", "answer": "a\\ud800b"}',
}


def hostile_body_failures(base_url: str, token: str, ids: dict[str, str]) -> list[str]:
    """Each JSON-body operation of the schema with each hostile body: what was not a 4xx error."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    failures = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        schema = http.get("/api/schema/?format=json", headers=headers).json()
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                if "requestBody" not in operation or "application/json" not in operation["requestBody"]["content"]:
                    continue
                url = re.sub(r"\{(\w+)\}", lambda match: ids.get(match.group(1), "x"), path)
                for name, body in HOSTILE_BODIES.items():
                    response = http.request(method.upper(), url, content=body.encode(), headers=headers)
                    shaped = response.headers.get("content-type", "").startswith("application/json") and \
                        set(response.json().get("error") or {}) == {"code", "message", "field"}
                    if not (400 <= response.status_code < 500 and shaped):
                        failures.append(f"{method.upper()} {url} {name}: {response.status_code} {response.text[:200]}")
    return failures


def test_api_schema_fuzz_has_no_server_errors_or_schema_violations(defaults, user, capsys):
    from rest_framework.authtoken.models import Token

    from agentos.testing import process_env, start_daphne, start_worker

    token = Token.objects.create(user=user).key
    worker = start_worker(concurrency=8)
    # /execute waits up to its timeout for the task; keep that below the fuzzer's request
    # timeout (30 s) so a long wait is an answer, not a network error.
    server = start_daphne(env=process_env(EXECUTE_MAX_TIMEOUT="20", EXECUTE_DEFAULT_TIMEOUT="10"))
    try:
        command = [
            str(SCHEMATHESIS), "run", f"{server.extra['url']}/api/schema/",
            "--header", f"Authorization: Token {token}",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", "10",
            "--seed", "20240601",
            "--generation-database", "none",
            "--request-timeout", "30",
            "--max-time", "150",
            # An open SSE stream of a paused or waiting task never ends, so a request/response
            # fuzzer can only time out on it. Its error paths and replay are covered by
            # tasks/tests/test_sse.py and the live daphne tests.
            "--exclude-path-regex", "/stream/?$",
            # One worker: hypothesis describes strategies with ast.parse, which on CPython 3.11
            # before 3.11.8 can fail in a worker thread ("AST constructor recursion depth
            # mismatch"), an error of the fuzzer itself rather than of the API.
            "--workers", "1",
            "--no-color",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=360)
        from tasks.models import Task

        waiting = Task.objects.create(owner=user, query="q", status="waiting_human",
                                      waiting_for={"reason": "ask_human", "question": "?", "step": 0})
        hostile = hostile_body_failures(server.extra["url"], token, {"task_id": str(waiting.pk), "name": "calculator"})
    finally:
        server.stop()
        worker.stop()
    report = done.stdout[-6000:]
    with capsys.disabled():
        print("\nschemathesis summary:\n" + "\n".join(report.strip().splitlines()[-25:]))
    assert done.returncode == 0, f"{report}\n{done.stderr[-3000:]}\ndaphne log:\n{server.log()[-3000:]}"
    assert not hostile, "\n".join(hostile)
