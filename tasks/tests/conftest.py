"""Fixtures of the orchestrator tests: default prompts/tools/agents and workers with settings."""

from __future__ import annotations

import pytest


@pytest.fixture
def agents_defaults(db):
    """Prompts, tools and agents (no knowledge base: faster than the full bootstrap)."""
    import prompts.defaults
    import tasks.defaults
    import tools.defaults

    prompts.defaults.load_defaults()
    tools.defaults.load_defaults()
    tasks.defaults.load_defaults()




@pytest.fixture
def make_beat(transactional_db):
    from agentos.testing import process_env, start_beat

    started = []

    def make(**env: str):
        beat = start_beat(env=process_env(**{k: str(v) for k, v in env.items()}))
        started.append(beat)
        return beat

    yield make
    for beat in started:
        beat.stop()
