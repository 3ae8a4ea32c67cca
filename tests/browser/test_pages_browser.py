"""The pages in a real browser: a task submitted, watched live, paused, resumed, answered, finished."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

# "confirm with me" makes the offline rule set ask the person (agentos/llm/offline_text.CONFIRM).
QUERY = "Research the history of the metric system, compute 12 * 7, and confirm with me before finishing"


def step_count(page) -> int:
    return page.locator("#timeline .step").count()


def status_text(page) -> str:
    return page.locator("#task-status").inner_text().strip()


def test_submit_watch_pause_resume_answer_and_finish(page, stack, knowledge_base, browser_user):
    from tasks.models import Task

    sign_in(page, stack)
    expect(page.locator(".banner")).to_contain_text("Offline mode")
    page.get_by_label("What should the agents do?").fill(QUERY)
    page.get_by_role("button", name="Start task").click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f-]+/$"))
    task = Task.objects.get(owner=browser_user)
    assert task.trigger == "page"
    # Pause at once: it takes effect when the step in flight has committed, and the status
    # changes on the page without a reload.
    page.evaluate("window.__noReload = true")  # a marker that a reload would wipe out
    page.locator("#pause-button").click()
    expect(page.locator("#task-status")).to_have_text("Paused", timeout=15_000)
    expect(page.locator("#resume-button")).to_be_enabled()
    expect(page.locator("#pause-button")).to_be_disabled()
    paused_at = step_count(page)
    time.sleep(1.5)
    assert step_count(page) == paused_at
    task.refresh_from_db()
    assert task.status == "paused"

    # Resume; steps appear one after another without a reload.
    page.locator("#resume-button").click()
    page.evaluate("window.__noReload = true")
    expect(page.locator("#live-state")).to_have_text("Live")
    counts = set()
    answer = page.locator("#respond-form")
    deadline = time.monotonic() + 30
    while not answer.is_visible() and time.monotonic() < deadline:
        counts.add(step_count(page))
        time.sleep(0.1)
    assert len(counts) >= 3, counts  # the timeline grew in several visible increments
    assert page.evaluate("window.__noReload") is True

    # The agent asks for confirmation: the answer form appears (live) at the top.
    expect(answer).to_be_visible()
    expect(page.locator("#task-status")).to_have_text("Waiting for you")
    expect(page.locator(".waiting .question")).to_contain_text("confirm")
    screenshot(page, "task-waiting-desktop")
    page.get_by_label("Your answer", exact=True).fill("Yes, that is fine")
    page.get_by_role("button", name="Send answer").click()

    # The task completes; the result is rendered and the timeline holds every step once.
    expect(page.locator("#task-status")).to_have_text("Completed", timeout=60_000)
    expect(page.locator("#task-result")).not_to_be_empty()
    expect(page.locator("#live-state")).to_have_text("Finished")
    task.refresh_from_db()
    assert task.status == "completed"
    indexes = page.locator("#timeline .step").evaluate_all("nodes => nodes.map(n => Number(n.dataset.index))")
    assert indexes == list(range(task.step_count))
    kinds = set(task.steps.values_list("kind", flat=True))
    assert {"plan", "llm", "tool", "pause", "resume", "human_request", "human_response", "result"} <= kinds
    expect(page.locator(".step.kind-human_response")).to_contain_text("Yes, that is fine")

    # A reload shows the same timeline.
    live_html = page.locator("#timeline").inner_html()
    page.reload()
    assert normalise(page.locator("#timeline").inner_html()) == normalise(live_html)

    # "Show prompt" reveals the exact messages of an LLM step.
    toggle = page.locator(".step.kind-llm details.prompt").first
    toggle.locator("summary").click()
    expect(toggle.locator(".message-item").first).to_be_visible()

    assert page.csp_errors == []
    screenshot(page, "task-finished-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "task-finished-phone")
    page.goto(f"{stack}/")
    expect(page.locator(f"#task-{task.id} .badge")).to_have_text("Completed")
    screenshot(page, "dashboard-phone")
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, "dashboard-desktop")
    assert page.csp_errors == []


def normalise(html: str) -> str:
    """Whitespace between tags differs between a parsed page and inserted fragments."""
    return re.sub(r">\s+<", "><", html).strip()


# Recorded sockets let a test break the connection the way a network drop would.
RECORD_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__socketUrls = [];
  window.__blockSockets = false;
  window.WebSocket = function (url, protocols) {
    if (window.__blockSockets) { throw new Error("network down"); }
    const socket = new Native(url, protocols);
    window.__sockets.push(socket);
    window.__socketUrls.push(String(url));
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
})();
"""


def running_task(owner, steps: int = 2):
    """A task nobody works on (never enqueued): the test writes its steps and events itself."""
    from tasks.models import Task

    task = Task.objects.create(owner=owner, query="A task written by the test", status="running", progress=0.1)
    for _ in range(steps):
        commit_step(task, output={"action": "tool", "tool": "calculator", "arguments": {"expression": "1+1"}})
    return task


def commit_step(task, **fields):
    """Append an LLM step and publish it, as the runner does after its commit."""
    from tasks import live
    from tasks.models import Step, Task

    task.refresh_from_db()
    step = Step.objects.create(task=task, index=task.step_count, kind="llm", agent="research", subtask_id="s1",
                               prompt_label="agent_research@1", tokens_in=10, tokens_out=5, **fields)
    Task.objects.filter(pk=task.pk).update(step_count=step.index + 1)
    task.refresh_from_db()
    live.publish(task.id, live.step_event(task, step))
    return step


def shown_indexes(page) -> list[int]:
    return page.locator("#timeline .step").evaluate_all("nodes => nodes.map(n => Number(n.dataset.index))")


def test_model_output_with_script_renders_as_text(page, stack, browser_user):
    payload = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    task = running_task(browser_user, steps=0)
    commit_step(task, output={"action": "finish", "result": payload, "reason": payload})
    sign_in(page, stack)
    page.goto(f"{stack}/tasks/{task.id}/")
    page.evaluate("window.__xss = 0")
    expect(page.locator("#live-state")).to_have_text("Live")
    scripts_before = page.evaluate("document.scripts.length")

    # The same payload arriving live, and as the task's Markdown result.
    commit_step(task, output={"action": "finish", "result": payload, "reason": payload})
    expect(page.locator("#timeline .step")).to_have_count(2)
    from tasks import live
    from tasks.models import Task

    Task.objects.filter(pk=task.pk).update(status="completed", result=f"# Done\n\n{payload}", progress=1.0)
    task.refresh_from_db()
    live.publish(task.id, live.status_event(task))
    expect(page.locator("#task-status")).to_have_text("Completed")

    for step in page.locator("#timeline .step").all():
        expect(step.locator(".reason")).to_have_text(payload)  # shown as text
    expect(page.locator("#task-result")).to_contain_text("<script>window.__xss = 1</script>")
    assert page.evaluate("document.scripts.length") == scripts_before
    assert page.locator("#timeline script, #timeline img, #task-result script, #task-result img").count() == 0
    assert page.evaluate("window.__xss") == 0
    page.reload()
    assert page.locator("#timeline script, #task-result script").count() == 0
    expect(page.locator("#task-result")).to_contain_text("<script>")


def test_reconnects_after_a_drop_and_fills_the_gap(page, stack, browser_user):
    task = running_task(browser_user, steps=2)
    page.add_init_script(RECORD_SOCKETS)
    sign_in(page, stack)
    page.goto(f"{stack}/tasks/{task.id}/")
    expect(page.locator("#live-state")).to_have_text("Live")
    assert shown_indexes(page) == [0, 1]

    # The connection drops and cannot come back for a while; steps keep committing.
    page.evaluate("window.__blockSockets = true; window.__sockets.forEach(s => s.close())")
    expect(page.locator("#live-state")).to_have_text("Connection lost; reconnecting…")
    commit_step(task, output={"action": "tool", "tool": "calculator", "arguments": {"expression": "2+2"}})
    commit_step(task, output={"action": "tool", "tool": "calculator", "arguments": {"expression": "3+3"}})
    # Missed events: the page fills the gap from the step log while it is disconnected.
    expect(page.locator("#timeline .step")).to_have_count(4, timeout=10_000)

    # The network is back: the page reconnects from the last index it holds.
    page.evaluate("window.__blockSockets = false")
    expect(page.locator("#live-state")).to_have_text("Live", timeout=20_000)
    assert page.evaluate("window.__socketUrls.at(-1)").endswith("?after=3")
    commit_step(task, output={"action": "finish", "result": "done"})
    expect(page.locator("#timeline .step")).to_have_count(5)
    assert shown_indexes(page) == [0, 1, 2, 3, 4]  # nothing missed, nothing twice


def test_dashboard_rows_follow_the_task_live(page, stack, browser_user):
    from tasks.services import task_create

    sign_in(page, stack)
    page.evaluate("window.__noReload = true")
    task = task_create(owner=browser_user, query="Compute 12 * 7", trigger="api")
    page.goto(f"{stack}/")
    page.evaluate("window.__noReload = true")
    row = page.locator(f"#task-{task.id}")
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("Completed", timeout=60_000)
    expect(row.locator("progress")).to_have_attribute("value", "100")
    assert page.evaluate("window.__noReload") is True
    assert page.csp_errors == []


def test_admin_api_docs_and_catalog_pages_work_under_the_policy(page, stack, django_user_model):
    django_user_model.objects.create_user("root", "root@example.com", "root-password-123", is_staff=True,
                                          is_superuser=True)
    sign_in(page, stack, "root", "root-password-123")
    page.goto(f"{stack}/prompts/")
    expect(page.locator("#prompt-plan")).to_be_visible()
    screenshot(page, "prompts-desktop")
    page.locator("section").filter(has=page.locator("#prompt-plan")).get_by_role("link", name="Edit in admin").click()
    expect(page.locator("#content h1, #content h2").first).to_be_visible()
    page.goto(f"{stack}/admin/prompts/promptversion/")
    page.locator("#result_list a").first.click()
    expect(page.locator("form")).not_to_have_count(0)
    page.goto(f"{stack}/tools/")
    expect(page.locator("#tool-calculator")).to_be_visible()
    page.goto(f"{stack}/api/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    assert page.csp_errors == []


def test_spanish_and_phone_width(browser, stack, browser_user):
    context = browser.new_context(viewport={"width": 375, "height": 740}, locale="es-ES")
    page = context.new_page()
    sign_in_es(page, stack)
    expect(page.get_by_role("heading", name="Nueva tarea")).to_be_visible()
    # Nothing overflows sideways at phone width.
    for path in ("/", "/prompts/", "/tools/"):
        page.goto(f"{stack}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    page.get_by_label("Idioma").select_option("en")
    expect(page.get_by_role("heading", name="Tools")).to_be_visible()
    context.close()


def sign_in_es(page, base_url: str) -> None:
    from tests.browser.conftest import PASSWORD

    page.goto(f"{base_url}/")
    page.get_by_label("Usuario").fill("carol")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    page.wait_for_url(f"{base_url}/")
