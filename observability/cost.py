"""What a model call cost, computed once when its step is stored.

- :func:`call_cost`: the arithmetic (pure): input tokens not served from the provider's
  cache at the input price, cached ones at the cached-input price (the input price when the
  row has none), output tokens at the output price; USD, rounded to 8 decimal places.
- :func:`price_for`: the price-table row for a provider and model, from a per-process copy
  of the table that is at most PRICE_CACHE_SECONDS old (a step never waits for a query).
- :func:`charge`: called by the step store (tasks/store.py) before it writes a step: sets
  the step's cost and adds it to the task's ``cost_usd`` in the same statement.
- :func:`budget_action`: the runner's cost-budget check, like the engine's step budget.

A step whose model has no price keeps ``cost_usd`` NULL ("unknown"), not 0: a missing row
must not look free. Token counts the provider did not report (``tokens_estimated``) make
an estimated cost; the step says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.00000001")
PRICE_CACHE_SECONDS = 30.0
# Step kinds that are model calls (the same set as the step store's usage counters).
MODEL_KINDS = frozenset({"plan", "llm", "summary", "synthesis"})


@dataclass(frozen=True)
class Price:
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal | None = None


def call_cost(price: Price, *, tokens_in: int, tokens_out: int, tokens_cached: int = 0) -> Decimal:
    """USD for one call. ``tokens_in`` includes ``tokens_cached`` (as providers report it)."""
    if min(tokens_in, tokens_out, tokens_cached) < 0:
        raise ValueError("token counts must not be negative")
    cached = min(tokens_cached, tokens_in)
    cached_price = price.cached_input_per_million
    if cached_price is None:
        cached_price = price.input_per_million
    total = ((tokens_in - cached) * price.input_per_million + cached * cached_price
             + tokens_out * price.output_per_million) / MILLION
    return total.quantize(COST_PLACES, rounding=ROUND_HALF_UP)


class PriceTable:
    """The price rows of this process, reloaded when older than ``max_age`` seconds or
    after :meth:`invalidate` (a saved row, in this process)."""

    def __init__(self, max_age: float = PRICE_CACHE_SECONDS) -> None:
        self.max_age = max_age
        self._rows: dict[str, list[tuple[str, Price]]] | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._rows = None

    def rows(self) -> dict[str, list[tuple[str, Price]]]:
        rows = self._rows
        if rows is None or time.monotonic() - self._loaded > self.max_age:
            with self._lock:
                rows = self._rows = self._load()
                self._loaded = time.monotonic()
        return rows

    @staticmethod
    def _load() -> dict[str, list[tuple[str, Price]]]:
        from observability.models import ModelPrice

        by_provider: dict[str, list[tuple[str, Price]]] = {}
        for row in ModelPrice.objects.all():
            price = Price(row.input_per_million, row.output_per_million, row.cached_input_per_million)
            by_provider.setdefault(row.provider, []).append((row.model, price))
        for entries in by_provider.values():  # the longest (most specific) name first
            entries.sort(key=lambda entry: len(entry[0]), reverse=True)
        return by_provider

    def price_for(self, provider: str, model: str) -> Price | None:
        for name, price in self.rows().get(provider, ()):
            if model == name or model.startswith(name):
                return price
        return None


prices = PriceTable()


def price_for(provider: str, model: str) -> Price | None:
    return prices.price_for(provider, model)


def step_cost(step) -> Decimal | None:
    """The cost of a model step (a tasks.models.Step), or None when it is not a model call
    or its model has no price."""
    if step.kind not in MODEL_KINDS or not step.model:
        return None
    price = price_for(step.provider, step.model)
    if price is None:
        return None
    return call_cost(price, tokens_in=step.tokens_in, tokens_out=step.tokens_out, tokens_cached=step.tokens_cached)


def charge(task, step, changes: dict) -> None:
    """Before ``step`` is stored: its cost, and the task's new total in ``changes``.

    The store writes both in the statement that appends the step, under the lease and the
    ``step_count`` check, so the total counts each committed step exactly once."""
    cost = step_cost(step)
    step.cost_usd = cost
    if cost:
        changes["cost_usd"] = (task.cost_usd or Decimal(0)) + cost


def cost_budget(task) -> Decimal | None:
    value = (task.options or {}).get("cost_budget")
    return None if value is None else Decimal(str(value))


def budget_problem(task) -> str | None:
    """Why the task may not spend more, or None: its cost has reached its ``cost_budget``."""
    budget = cost_budget(task)
    spent = task.cost_usd or Decimal(0)
    if budget is None or spent < budget:
        return None
    return f"cost budget exhausted: ${spent.normalize():f} spent of ${budget.normalize():f}"


def budget_action(task, action):
    """The runner's check before a model or tool step: once the task's cost has reached
    its budget, the action becomes ``Fail`` (the task fails with the reason, as with the
    step budget). A step under way is never cut short: the budget can be passed by the
    cost of the one call that crossed it."""
    from tasks.engine import actions as a

    if isinstance(action, a.WORK_ACTIONS):
        problem = budget_problem(task)
        if problem:
            return a.Fail(problem)
    return action
