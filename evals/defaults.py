"""The datasets shipped in evals/defaults/ (``<name>.json``), and their idempotent loader.

``load_defaults`` (``manage.py bootstrap``, and the ``prompts eval`` command when the named
dataset is missing) creates a shipped dataset (no owner) that does not exist yet; it never
changes one that exists, so staff may edit the shipped items in the admin.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.db import transaction

from evals.models import Dataset
from evals.services import dataset_create, dataset_item_create
from prompts.models import PromptTemplate

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


def shipped_names() -> list[str]:
    return sorted(path.stem for path in DEFAULTS_DIR.glob("*.json"))


@transaction.atomic
def load_dataset(name: str) -> Dataset | None:
    """Create the shipped dataset ``name`` unless it exists or its template is missing."""
    if Dataset.objects.filter(owner__isnull=True, name=name).exists():
        return None
    spec = json.loads((DEFAULTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    template = PromptTemplate.objects.filter(slug=spec["template"]).first() if spec.get("template") else None
    if spec.get("template") and template is None:
        return None
    dataset = dataset_create(owner=None, name=spec["name"], description=spec.get("description", ""),
                             template=template)
    for item in spec["items"]:
        dataset_item_create(dataset=dataset, query=item.get("query", ""), variables=item.get("variables"),
                            checks=item.get("checks"), note=item.get("note", ""))
    return dataset


def load_defaults() -> str:
    created = [name for name in shipped_names() if load_dataset(name)]
    return f"{len(created)} dataset(s) created" + (f" ({', '.join(created)})" if created else "")
