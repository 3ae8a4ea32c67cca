"""Cost: the arithmetic, the price table, each step's cost, the task's sum, each prompt
version's sum, and the per-task cost budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from observability.cost import Price, PriceTable, call_cost
from observability.tests.conftest import INPUT_PRICE, OUTPUT_PRICE, run_to_end
from tasks.models import Step
from tasks.services import task_create

MILLION = Decimal(1_000_000)


def test_call_cost_prices_input_cached_input_and_output_tokens():
    price = Price(Decimal("3.00"), Decimal("15.00"), Decimal("0.30"))
    # 1000 input tokens of which 400 cached, 200 output tokens.
    expected = (600 * Decimal("3.00") + 400 * Decimal("0.30") + 200 * Decimal("15.00")) / MILLION
    assert call_cost(price, tokens_in=1000, tokens_out=200, tokens_cached=400) == expected == Decimal("0.00492")


def test_cached_tokens_cost_the_input_price_when_the_row_has_no_cached_price():
    price = Price(Decimal("2.00"), Decimal("8.00"))
    assert call_cost(price, tokens_in=500, tokens_out=0, tokens_cached=500) == Decimal("0.001")


def test_call_cost_rounds_to_eight_places_and_refuses_negative_counts():
    price = Price(Decimal("0.15"), Decimal("0.60"))
    assert call_cost(price, tokens_in=1, tokens_out=0) == Decimal("0.00000015")
    assert call_cost(price, tokens_in=0, tokens_out=0) == 0
    with pytest.raises(ValueError):
        call_cost(price, tokens_in=-1, tokens_out=0)


@pytest.mark.django_db
def test_the_longest_matching_model_name_prices_a_dated_model():
    from observability.models import ModelPrice

    ModelPrice.objects.update_or_create(provider="openai", model="gpt-4o", defaults={
        "input_per_million": Decimal("2.5"), "output_per_million": Decimal("10")})
    ModelPrice.objects.update_or_create(provider="openai", model="gpt-4o-mini", defaults={
        "input_per_million": Decimal("0.15"), "output_per_million": Decimal("0.6")})
    table = PriceTable()
    assert table.price_for("openai", "gpt-4o-mini-2024-07-18").input_per_million == Decimal("0.15")
    assert table.price_for("openai", "gpt-4o-2024-08-06").input_per_million == Decimal("2.5")
    assert table.price_for("anthropic", "gpt-4o") is None
    assert table.price_for("openai", "o3") is None


@pytest.mark.django_db
def test_the_example_rows_are_marked_as_examples():
    from observability.models import ModelPrice

    examples = ModelPrice.objects.filter(is_example=True)
    assert examples.filter(provider="openai", model="gpt-4o-mini").exists()
    assert all("EXAMPLE" in row.note for row in examples)


def _expected(step: Step) -> Decimal:
    return ((step.tokens_in * INPUT_PRICE + step.tokens_out * OUTPUT_PRICE) / MILLION).quantize(Decimal("1e-8"))


def test_each_model_step_has_its_cost_and_the_task_their_sum(agents_defaults, priced, user, auth_client):
    task = task_create(owner=user, query="compute 12 * 7")
    assert run_to_end(task.id) == "finished"
    task.refresh_from_db()
    steps = list(Step.objects.filter(task=task).order_by("index"))
    model_steps = [s for s in steps if s.kind in ("plan", "llm", "summary", "synthesis")]
    assert len(model_steps) >= 3
    for step in model_steps:
        assert (step.provider, step.model) == ("offline", "offline-rules")
        assert step.tokens_in > 0 and step.cost_usd == _expected(step) > 0
    assert all(s.cost_usd is None for s in steps if s not in model_steps), "only model calls cost"
    assert task.status == "completed" and task.cost_usd == sum(s.cost_usd for s in model_steps)

    body = auth_client.get(f"/api/v1/tasks/{task.id}/").json()
    assert Decimal(str(body["cost_usd"])) == task.cost_usd
    listed = auth_client.get(f"/api/v1/tasks/{task.id}/steps/").json()
    listed = listed.get("steps", listed) if isinstance(listed, dict) else listed
    plan = next(s for s in listed if s["kind"] == "plan")
    assert plan["model"] == "offline-rules" and Decimal(str(plan["cost_usd"])) == model_steps[0].cost_usd
    assert plan["tokens_estimated"] in (True, False)


def test_a_model_without_a_price_has_no_cost_rather_than_zero(agents_defaults, user):
    from observability.cost import prices
    from observability.models import ModelPrice

    ModelPrice.objects.filter(provider="offline").delete()
    prices.invalidate()
    task = task_create(owner=user, query="compute 2 * 3")
    run_to_end(task.id)
    task.refresh_from_db()
    plan = Step.objects.get(task=task, kind="plan")
    assert plan.tokens_in > 0 and plan.cost_usd is None and task.cost_usd == 0


def test_each_prompt_version_sums_the_cost_of_its_steps(agents_defaults, priced, user, auth_client):
    for query in ("compute 12 * 7", "compute 3 * 4"):
        run_to_end(task_create(owner=user, query=query).id)
    plans = Step.objects.filter(kind="plan")
    label = plans.first().prompt_label
    expected = sum(s.cost_usd for s in plans.filter(prompt_label=label))

    template = auth_client.get("/api/v1/prompts/plan/").json()
    version = next(v for v in template["versions"] if v["label"] == label)
    stats = version["statistics"]
    assert Decimal(str(stats["cost_usd"])) == expected and stats["priced_uses"] == plans.count() == 2
    assert stats["mean_cost_usd"] == pytest.approx(float(expected) / 2)


def test_the_admin_lists_each_versions_cost(agents_defaults, priced, user, staff_user, client):
    run_to_end(task_create(owner=user, query="compute 12 * 7").id)
    plan = Step.objects.get(kind="plan")
    client.force_login(staff_user)
    page = client.get("/admin/prompts/promptversion/").content.decode()
    assert "cost (usd)" in page.lower() and f"{plan.cost_usd:.6f}" in page


def test_the_cost_budget_ends_the_task_with_a_clear_error(agents_defaults, priced, user):
    task = task_create(owner=user, query="compute 12 * 7, then compute 3 * 4", options={"cost_budget": 0.000001})
    assert run_to_end(task.id) == "finished"
    task.refresh_from_db()
    steps = list(Step.objects.filter(task=task).order_by("index"))
    assert task.status == "failed" and task.error.startswith("cost budget exhausted: $")
    assert [s.kind for s in steps[1:]] == ["plan", "error"], "no model or tool call after the budget is spent"
    assert task.cost_usd >= Decimal("0.000001")


@pytest.mark.parametrize("value", ["1", True, 0, -1, 2_000_000])
def test_the_cost_budget_option_is_a_positive_json_number(agents_defaults, user, auth_client, value):
    response = auth_client.post("/api/v1/tasks/", {"query": "hello", "options": {"cost_budget": value}},
                                format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "options.cost_budget"


def test_the_task_page_and_the_dashboard_show_the_cost(agents_defaults, priced, user, client):
    from django.template.defaultfilters import floatformat

    task = task_create(owner=user, query="compute 12 * 7")
    run_to_end(task.id)
    task.refresh_from_db()
    plan = Step.objects.get(task=task, kind="plan")
    client.force_login(user)
    page = client.get(f"/tasks/{task.id}/").content.decode()
    assert f"${floatformat(task.cost_usd, 6)}" in page, "the task's total"
    assert f"${floatformat(plan.cost_usd, 6)}" in page, "the plan step's own cost in the timeline"
    assert f"${floatformat(task.cost_usd, 6)}" in client.get("/").content.decode()
