"""Reads: what each prompt version's model calls cost.

Summed from the steps (``Step.prompt_label`` is ``"<slug>@<number>"``, ``Step.cost_usd``
the cost computed when the step was stored), so a version's cost is always the sum of its
steps' costs: no second counter to drift. Steps without a price (``cost_usd`` NULL) are not
counted; ``priced_uses`` says how many were.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import CharField, Count, DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat


def version_cost(total: Decimal | None, priced: int) -> dict:
    """The statistics' cost fields: total USD and the mean per priced call (None without one)."""
    total = total or Decimal(0)
    return {"cost_usd": float(total), "priced_uses": priced,
            "mean_cost_usd": float(total / priced) if priced else None}


def costs_by_label() -> dict[str, dict]:
    """label -> cost fields, for every version that has a priced step (one grouped query)."""
    from tasks.models import Step

    rows = (Step.objects.filter(cost_usd__isnull=False).exclude(prompt_label="").order_by()
            .values_list("prompt_label").annotate(total=Sum("cost_usd"), priced=Count("pk")))
    return {label: version_cost(total, priced) for label, total, priced in rows}


class VersionCosts:
    """The costs of every version, read once on first use (one per API response)."""

    def __init__(self) -> None:
        self._by_label: dict[str, dict] | None = None

    def get(self, label: str) -> dict:
        if self._by_label is None:
            self._by_label = costs_by_label()
        return self._by_label.get(label) or version_cost(None, 0)


def with_cost(versions):
    """PromptVersion queryset annotated with ``cost_usd_total`` (Decimal, 0 when none)."""
    from tasks.models import Step

    label = Concat("template__slug", Value("@"), Cast("number", CharField()))
    steps = (Step.objects.filter(prompt_label=OuterRef("cost_label"), cost_usd__isnull=False).order_by()
             .values("prompt_label").annotate(total=Sum("cost_usd")).values("total"))
    money = DecimalField(max_digits=20, decimal_places=8)
    return versions.annotate(cost_label=label).annotate(
        cost_usd_total=Coalesce(Subquery(steps, output_field=money), Value(Decimal(0)), output_field=money))
