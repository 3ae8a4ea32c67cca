"""A missing or malformed setting stops start-up with one line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AGENTOS_TESTING",)}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "agentos.settings"
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be true or false"),
        ({"TASK_LEASE_SECONDS": "soon"}, "TASK_LEASE_SECONDS must be an integer"),
        ({"TASK_LEASE_SECONDS": "0"}, "TASK_LEASE_SECONDS must be between"),
        ({"LLM_PROVIDER": "magic"}, "LLM_PROVIDER must be one of"),
        ({"DATABASE_URL": "mysql://x@localhost/db", "SECRET_KEY": "k" * 40},
         "DATABASE_URL must be a URL starting with"),
        ({"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "SECRET_KEY": ""}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
        ({"LLM_PROVIDER": "openai", "OPENAI_API_KEY": ""}, "needs OPENAI_API_KEY"),
    ],
)
def test_bad_setting_stops_startup_with_one_line(overrides, expected):
    result = run_manage(overrides, "check")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert lines[0].startswith("agentos: configuration error:")


def test_good_settings_pass_the_system_check():
    result = run_manage({}, "check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_are_safe():
    result = run_manage(
        {"DATABASE_URL": "postgres://u@127.0.0.1:1/db", "SECRET_KEY": "x" * 40},
        "shell", "-v", "0", "-c",
        "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True"]
