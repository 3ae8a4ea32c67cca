"""Invoking the worst-case tool over the API never slows other users' requests.

A real daphne server: ``spin_in_c`` is ``round(1, -10**7)``, the call that held the web
process's interpreter lock for 15 s before tools ran in tool processes (issue #18). The
server loads it through TOOLS_EXTRA_MODULES, unbounded by the calculator's own checks, so
only the tool process's limits stand between it and the server.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.slow


@pytest.fixture
def hostile_daphne(transactional_db):
    from agentos.testing import process_env, start_daphne

    server = start_daphne(env=process_env(TOOLS_EXTRA_MODULES="tools.tests.hostile_tools"))
    yield server
    server.stop()


def key(user) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


def test_another_users_requests_stay_fast_while_the_worst_case_tool_runs(user, other_user, hostile_daphne):
    url = hostile_daphne.extra["url"]
    attacker, bystander = key(user), key(other_user)
    warm = httpx.post(f"{url}/api/v1/tools/calculator/invoke", json={"arguments": {"expression": "1+1"}},
                      headers=attacker, timeout=60)
    assert warm.status_code == 200 and warm.json()["ok"], warm.text
    outcomes: list[httpx.Response] = []

    def attack(name: str, arguments: dict) -> None:
        outcomes.append(httpx.post(f"{url}/api/v1/tools/{name}/invoke", json={"arguments": arguments},
                                   headers=attacker, timeout=60))

    attacks = [threading.Thread(target=attack, args=("spin_in_c", {})),
               threading.Thread(target=attack, args=("calculator", {"expression": "round(1, -10**7)"})),
               threading.Thread(target=attack, args=("spin", {}))]
    started = time.monotonic()
    for thread in attacks:
        thread.start()
    time.sleep(0.3)  # the tools are at work
    timings = []
    with httpx.Client(base_url=url, headers=bystander, timeout=30) as client:
        while any(thread.is_alive() for thread in attacks) and time.monotonic() - started < 20:
            sent = time.monotonic()
            response = client.get("/api/v1/tools/")
            timings.append(time.monotonic() - sent)
            assert response.status_code == 200
            time.sleep(0.05)
    for thread in attacks:
        thread.join(30)
    assert len(timings) >= 5, timings
    assert max(timings) < 0.5, f"another user's GET took {max(timings):.2f}s during the tool call"
    by_tool = {response.request.url.path.split("/")[-2]: response.json() for response in outcomes}
    assert by_tool["spin_in_c"]["error_code"] == "timeout"
    assert by_tool["spin"]["error_code"] == "timeout"
    assert by_tool["calculator"]["error_code"] == "tool_error"
    assert time.monotonic() - started < 8  # killed at the 1.5 s timeout, not run to the end (~10 s)
    after = httpx.post(f"{url}/api/v1/tools/calculator/invoke", json={"arguments": {"expression": "6*7"}},
                       headers=attacker, timeout=30)
    assert after.json()["result"]["result"] == 42  # the killed processes were replaced
