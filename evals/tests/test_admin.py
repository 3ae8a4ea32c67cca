"""The evals admin: datasets with items (checks validated), runs read-only, feedback."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evals.models import Dataset


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def item_formset(**item) -> dict:
    data = {"items-TOTAL_FORMS": "1", "items-INITIAL_FORMS": "0", "items-MIN_NUM_FORMS": "0",
            "items-MAX_NUM_FORMS": "1000"}
    return data | {f"items-0-{name}": value for name, value in item.items()}


def test_dataset_with_items_and_checks_validated(staff, plan_versions):
    url = reverse("admin:evals_dataset_add")
    bad = staff.post(url, {"name": "d", "description": "", **item_formset(
        query="q", variables="{}", checks='[{"type": "regex", "pattern": "(a+)+$"}]', note="")})
    assert bad.status_code == 200 and "refused" in bad.content.decode() and not Dataset.objects.exists()
    good = staff.post(url, {"name": "d", "description": "", **item_formset(
        query="q", variables="{}", checks='[{"type": "contains", "value": "s1"}]', note="")})
    assert good.status_code == 302
    assert Dataset.objects.get().items.get().checks == [{"type": "contains", "value": "s1"}]


def test_a_check_type_that_is_not_a_string_is_a_form_error(staff, plan_versions):
    response = staff.post(reverse("admin:evals_dataset_add"), {"name": "d", "description": "", **item_formset(
        query="q", variables="{}", checks='[{"type": []}]', note="")})
    assert response.status_code == 200 and "type must be a string" in response.content.decode()
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("name", ["dataset", "evalrun", "taskfeedback"])
def test_lists_render(staff, name, plan_dataset):
    assert staff.get(reverse(f"admin:evals_{name}_changelist")).status_code == 200
