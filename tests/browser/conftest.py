"""Browser tests: Debian's Chromium driven by Playwright against a live daphne and a real worker."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from django.core.management import call_command

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct-horse-battery"
# Slow enough that steps visibly arrive one by one, fast enough for a short test.
LATENCY_MS = "400"


@pytest.fixture
def allow_sync_orm(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread, which makes Django
    # refuse ORM calls; the test's own ORM calls are plain blocking reads, so allow them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@contextlib.contextmanager
def live_servers(django_db_blocker, **env_overrides):
    """A worker and daphne on the test database with ``env_overrides``; yields daphne's URL."""
    from agentos.testing import process_env, start_daphne, start_worker

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with django_db_blocker.unblock():
        env = process_env(**env_overrides)
        worker = start_worker(env=env)
        try:
            server = start_daphne(env=env)
        except Exception:
            worker.stop()
            raise
    try:
        yield server.extra["url"]
    finally:
        server.stop()
        worker.stop()


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    """daphne + a worker on the test database, shared by the tests of a module (they take
    seconds to start); each test still gets an emptied database through ``stack``."""
    with live_servers(django_db_blocker, OFFLINE_LLM_LATENCY_MS=LATENCY_MS, LLM_PROVIDER="offline") as url:
        yield url


@pytest.fixture
def stack(servers, transactional_db, allow_sync_orm):
    """The base URL of the live server, with prompts, tools and agents in the (emptied) database."""
    from prompts.defaults import load_defaults as load_prompts
    from tasks.defaults import load_defaults as load_agents
    from tools.defaults import load_defaults as load_tools

    load_prompts(), load_tools(), load_agents()
    return servers


@pytest.fixture
def knowledge_base(stack):
    """The sample knowledge base too (the research agent's searches find something)."""
    call_command("bootstrap", verbosity=0)


@pytest.fixture
def browser_user(django_user_model, transactional_db):
    return django_user_model.objects.create_user("carol", "carol@example.com", PASSWORD)


@pytest.fixture
def browser(allow_sync_orm):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def new_page(browser, *, height: int = 800, timeout_ms: int = 20_000):
    """A fresh browser context's page that records CSP violations and page errors."""
    context = browser.new_context(viewport={"width": 1280, "height": height}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.csp_errors = []
    page.on("console", lambda message: page.csp_errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: page.csp_errors.append(f"page error: {error}"))
    return page


@pytest.fixture
def page(browser, stack):
    page = new_page(browser)
    yield page
    page.context.close()


def sign_in(page, base_url: str, username: str = "carol", password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
