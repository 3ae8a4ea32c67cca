"""docker-compose.yml cannot run here; check its shape against what the README promises."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_the_readme_names_is_defined_with_a_command():
    compose = load_compose()
    services = compose["services"]
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`compose:(\w+)`", readme))
    assert {"db", "redis", "web", "worker", "beat"} <= named
    for name in named:
        assert name in services, f"README names service {name!r}, docker-compose.yml lacks it"


def test_services_have_health_checks_volumes_and_pgvector():
    services = load_compose()["services"]
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    for name in ("db", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    assert any("pgdata" in v for v in services["db"]["volumes"])
    assert any("redisdata" in v for v in services["redis"]["volumes"])
    assert "daphne" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "agentos", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "agentos", "beat"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
