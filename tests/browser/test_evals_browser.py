"""The eval pages in Chromium: two versions of plan run by a real worker against the
loopback OpenAI-compatible server, live progress, then the comparison page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import live_servers, new_page, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def eval_servers(django_db_setup, django_db_blocker):
    """The loopback model server, then daphne and a worker configured to use it."""
    from evals.tests.conftest import PlanServer

    with PlanServer() as model:
        model.delay_s = 0.15  # slow enough to see the progress move
        with live_servers(django_db_blocker, LLM_PROVIDER="openai", OPENAI_API_KEY="k",
                          OPENAI_BASE_URL=model.url + "/v1", LLM_MAX_RETRIES="0", EVAL_CONCURRENCY="2") as url:
            yield url


@pytest.fixture
def eval_page(browser, eval_servers, transactional_db, browser_user):
    import prompts.defaults
    from evals.defaults import load_dataset
    from evals.tests.conftest import MARKER_B
    from prompts.models import PromptVersion
    from prompts.services import prompt_version_create

    prompts.defaults.load_defaults()
    first = PromptVersion.objects.get(template__slug="plan", number=1)
    prompt_version_create(template=first.template, body=first.body + "\n" + MARKER_B, note="three always")
    load_dataset("plan-smoke")
    page = new_page(browser, height=900, timeout_ms=30_000)
    yield page
    page.context.close()


def run_version(page, base: str, label: str) -> str:
    page.goto(f"{base}/evals/")
    page.locator("#id_dataset").select_option(label="plan-smoke (plan)")
    page.get_by_label("Prompt version").select_option(label=label + (" (active)" if label == "plan@1" else ""))
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_url(re.compile(r"/evals/runs/\d+/$"))
    # The page polls the run and reloads itself once it has finished.
    expect(page.locator("#run-status")).to_have_text(re.compile("completed", re.IGNORECASE), timeout=60_000)
    return page.url


def test_two_versions_compared_in_the_browser(eval_page, eval_servers, browser_user):
    page, base = eval_page, eval_servers
    sign_in(page, base)
    run_version(page, base, "plan@1")
    expect(page.locator("#run-pass-rate")).to_contain_text("100% (5/5)")
    run_version(page, base, "plan@2")
    expect(page.locator("#run-pass-rate")).to_contain_text("60% (3/5)")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url(re.compile(r"/evals/compare/\?a=\d+&b=\d+"))
    rates = page.locator("#compare-summary .pass-rate")
    expect(rates).to_have_text(["60% (3/5)", "100% (5/5)"])
    expect(page.locator("#compare-items tr.differs")).to_have_count(2)
    expect(page.locator("#compare-items tr.differs").first).to_contain_text("What is 17 multiplied by 23?")
    screenshot(page, "evals-compare")
    assert page.csp_errors == []
