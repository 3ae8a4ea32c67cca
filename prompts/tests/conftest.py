"""Fixtures of the prompts tests: a small template with a used and an unused version."""

from __future__ import annotations

import pytest

from prompts.services import prompt_template_create, prompt_version_create, prompt_version_record_use


@pytest.fixture
def template(db):
    return prompt_template_create(
        slug="greet", description="Greets someone.", required_variables=["name"], optional_variables=["mood"],
        response_schema={"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]},
        sample_variables={"name": "Ada"})


@pytest.fixture
def version(template):
    return prompt_version_create(template=template, body="Say hello to {{ name }}.", temperature=0.2,
                                 max_tokens=100, note="first", activate=True)


@pytest.fixture
def used_version(version):
    prompt_version_record_use(version_id=version.pk, success=True, tokens_in=10, tokens_out=5, latency_ms=100)
    version.refresh_from_db()
    return version
