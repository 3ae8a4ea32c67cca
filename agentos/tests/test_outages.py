"""PostgreSQL or Redis down: 503 in the error shape with Retry-After, a short page for people,
and one warning line per request instead of a traceback.

Each scenario runs in a fresh process whose settings point at a port where nothing listens
(connection refused at once, so the outage is deterministic), through Django's full
request handling (middleware, handler500, logging configuration).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFUSED_PORT = 9  # discard: nothing listens there on a test machine

SCRIPT = """
import json, sys, django
django.setup()
from django.test import Client
client = Client(raise_request_exception=False)
answers = []
for method, path, headers in json.loads(sys.argv[1]):
    response = getattr(client, method)(path, content_type="application/json", **headers) if method == "post" \\
        else client.get(path, **headers)
    body = b"" if getattr(response, "streaming", False) else response.content
    answers.append({"status": response.status_code, "type": response.get("Content-Type", ""),
                    "retry_after": response.get("Retry-After"), "body": body.decode("utf-8", "replace")[:2000]})
print("ANSWERS " + json.dumps(answers))
"""


def run_requests(requests: list, **env_overrides: str) -> tuple[list[dict], str]:
    from agentos.testing import process_env

    env = process_env(**env_overrides)
    env.update(AGENTOS_TESTING="1", LOG_LEVEL="INFO")
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(requests)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("ANSWERS "))
    return json.loads(line.removeprefix("ANSWERS ")), done.stderr


def assert_unavailable_json(answer: dict) -> None:
    assert answer["status"] == 503, answer
    assert answer["type"].startswith("application/json"), answer
    assert json.loads(answer["body"]) == {"error": {"code": "service_unavailable", "field": None,
                                                    "message": json.loads(answer["body"])["error"]["message"]}}
    assert answer["retry_after"] and int(answer["retry_after"]) > 0


def assert_concise_log(stderr: str, requests: int) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "ERROR" not in stderr, stderr[-3000:]
    assert 1 <= stderr.count("Service unavailable") <= requests, stderr[-3000:]


@pytest.mark.django_db
def test_database_down_api_sse_and_pages_answer_503_without_tracebacks():
    task_id = "5d0c6f0e-7f35-4c1c-9a43-0a3d6c8c1f11"
    token = {"HTTP_AUTHORIZATION": "Token " + "a" * 40}
    requests = [
        ["get", "/api/v1/tasks/", token],
        ["post", "/api/v1/tasks/", token],
        ["get", f"/api/v1/tasks/{task_id}/stream?token={'a' * 40}", {}],
        ["get", "/", {"HTTP_COOKIE": "sessionid=abcdefghijklmnopqrstuvwxyz012345"}],
    ]
    answers, stderr = run_requests(requests, DATABASE_URL=f"postgres://agentos:x@127.0.0.1:{REFUSED_PORT}/agentos")
    for answer in answers[:3]:
        assert_unavailable_json(answer)
    page = answers[3]
    assert page["status"] == 503 and page["type"].startswith("text/html") and page["retry_after"]
    assert "Temporarily unavailable" in page["body"]
    assert_concise_log(stderr, len(requests))
    assert "a" * 40 not in stderr  # the token in the query string is redacted too


@pytest.mark.django_db(transaction=True)
def test_redis_down_api_and_sse_answer_503_without_tracebacks(user):
    from tasks.tests.api_support import make_task, token_for

    key = token_for(user)
    task = make_task(user, status="running")
    requests = [
        ["get", "/api/v1/tasks/", {"HTTP_AUTHORIZATION": f"Token {key}"}],
        ["get", f"/api/v1/tasks/{task.pk}/stream", {"HTTP_AUTHORIZATION": f"Token {key}"}],
    ]
    answers, stderr = run_requests(requests, REDIS_URL=f"redis://127.0.0.1:{REFUSED_PORT}")
    for answer in answers:
        assert_unavailable_json(answer)
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr[-3000:]
