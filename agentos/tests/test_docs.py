"""The documentation cannot rot silently.

- Every environment variable the code reads appears in docs/configuration.md, and every
  variable that page lists in a table is still read by the code.
- Every operation of the OpenAPI schema appears in docs/api.md as ``METHOD /path``, and
  every ``METHOD /api/...`` that page names still exists.
- Every relative link in README.md and docs/ leads to a file, and every ``module.name``
  of ours quoted in them can be imported.

The variables are collected by reading the source with ``ast`` (helper calls of
agentos.config such as ``env_int("NAME", ...)``, and ``os.environ`` / ``os.getenv``
lookups), not by importing settings, so a variable read anywhere is found.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SKIPPED_DIRS = {".venv", "var", ".git", "node_modules", "test-artifacts", "__pycache__", ".ruff_cache"}
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_choice", "env_url"}
# The one place allowed to read a variable whose name is not a literal: the helpers themselves.
# mcp_bridge/client.py resolves ${NAME} in MCP server headers: names an administrator chose (docs/mcp.md).
GENERIC_READERS = {"agentos/config.py", "mcp_bridge/client.py"}
# Set in docker-compose.yml for the database container, not read by Python.
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}
# Pages written alongside this one that a link may name before they exist in this checkout.
PENDING_PAGES: set[str] = set()  # pages a link may name before they are written
OUR_PACKAGES = ("agentos", "prompts", "tasks", "tools", "memory", "triggers", "evals", "mcp_bridge", "observability",
                "workspaces")
METHODS = ("get", "post", "put", "patch", "delete")


def python_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
            yield path


def _is_environ(node: ast.AST) -> bool:
    """``os.environ``, ``environ`` or ``__import__("os").environ``."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def environment_reads(tree: ast.AST) -> Iterator[tuple[str | None, int]]:
    """(variable name or None when not a literal, line) of every read of the environment."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            first = node.args[0] if node.args else None
            if name in ENV_HELPERS:
                yield _literal(first), node.lineno
            elif isinstance(func, ast.Attribute) and func.attr in ("get", "pop") and _is_environ(func.value):
                yield _literal(first), node.lineno
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                yield _literal(first), node.lineno
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            yield _literal(node.slice), node.lineno
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                and any(_is_environ(c) for c in node.comparators):
            yield _literal(node.left), node.lineno


def variables_read_by_code() -> dict[str, list[str]]:
    """Every variable name read from the environment -> where ("path:line")."""
    found: dict[str, list[str]] = {}
    for path in python_files():
        relative = path.relative_to(ROOT).as_posix()
        for name, line in environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            if name is not None:
                found.setdefault(name, []).append(f"{relative}:{line}")
    return found


def backticked_names(text: str) -> set[str]:
    return set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", text))


def table_variables(text: str) -> set[str]:
    """Variables in the first column of the page's tables (``| `NAME`, `OTHER` | ...``)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names |= backticked_names(line.split("|")[1])
    return names


def test_the_collector_sees_every_kind_of_read():
    source = ('import os\nfrom agentos.config import env_int\nA = env_int("ONE", 1)\nB = os.environ.get("TWO")\n'
              'C = os.getenv("THREE")\nD = os.environ["FOUR"]\nE = "FIVE" in os.environ\n'
              'F = __import__("os").environ.get("SIX")\nG = os.environ.get(name)\nos.environ.setdefault("SEVEN", "")\n')
    reads = [name for name, _ in environment_reads(ast.parse(source))]
    assert reads.count(None) == 1
    assert {name for name in reads if name} == {"ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX"}


def test_every_environment_variable_is_in_configuration_md():
    documented = backticked_names((DOCS / "configuration.md").read_text(encoding="utf-8"))
    read = variables_read_by_code()
    # The settings module alone reads dozens; a collector that finds nothing is broken.
    assert {"DATABASE_URL", "TASK_LEASE_SECONDS", "MEMORY_EMBEDDER", "HOST", "AGENTOS_VAR_DIR"} <= set(read)
    missing = {name: where for name, where in read.items() if name not in documented}
    assert not missing, f"read by the code but not in docs/configuration.md: {missing}"


def test_every_variable_in_configuration_md_is_read_by_the_code():
    listed = table_variables((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert len(listed) > 40
    stale = sorted(listed - set(variables_read_by_code()) - COMPOSE_ONLY)
    assert not stale, f"docs/configuration.md lists variables nothing reads any more: {stale}"


def test_every_environment_read_names_its_variable():
    """A name built at run time would hide the variable from the two tests above."""
    hidden = []
    for path in python_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative in GENERIC_READERS:
            continue
        for name, line in environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            if name is None:
                hidden.append(f"{relative}:{line}")
    assert not hidden, f"read the environment with a literal name (or through agentos.config): {hidden}"


def schema_operations() -> set[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {(method.upper(), path) for path, operations in schema["paths"].items()
            for method in operations if method in METHODS}


def test_every_api_operation_is_in_api_md():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    operations = schema_operations()
    assert ("POST", "/api/v1/tasks/") in operations
    missing = sorted(f"{method} {path}" for method, path in operations if f"{method} {path}" not in text)
    assert not missing, f"OpenAPI operations missing from docs/api.md: {missing}"


def test_every_operation_api_md_names_exists():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    known = {(method, path.rstrip("/")) for method, path in schema_operations()}
    named = set(re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/api/[A-Za-z0-9_/{}-]*)", text))
    stale = sorted(f"{m} {p}" for m, p in named if (m, p.rstrip("/")) not in known and not p.startswith("/api/schema")
                   and not p.startswith("/api/docs"))
    assert not stale, f"docs/api.md names operations the API does not have: {stale}"


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        if not path.exists() and relative not in PENDING_PAGES:
            broken.append(target)
    assert not broken, f"{page.name} links to missing files: {broken}"


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_quoted_code_names_exist(page):
    """`tasks.services.task_create` and the like: the module imports and has the name."""
    text = page.read_text(encoding="utf-8")
    pattern = rf"`((?:{'|'.join(OUR_PACKAGES)})(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\(|`)"
    missing = []
    for dotted in sorted(set(re.findall(pattern, text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attribute in parts[cut:]:
                    target = getattr(target, attribute)
            except AttributeError:
                missing.append(dotted)
            break
        else:
            missing.append(dotted)
    assert not missing, f"{page.name} quotes names that do not exist: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_quoted_paths_exist(page):
    """`tasks/runner.py` and the like, except files a recipe tells the reader to create."""
    text = page.read_text(encoding="utf-8")
    created_by_recipes = set(re.findall(r"<!-- creates: (\S+) -->", text))
    pattern = rf"`((?:{'|'.join(OUR_PACKAGES)}|bench|docs|templates|static|locale)/[A-Za-z0-9_./-]*)`"
    missing = sorted(path for path in set(re.findall(pattern, text))
                     if "<" not in path and not (ROOT / path).exists() and path not in created_by_recipes
                     and path not in PENDING_PAGES)
    assert not missing, f"{page.name} quotes paths that do not exist: {missing}"


def test_every_app_with_tests_is_in_the_suite():
    """`make test` runs pytest's testpaths: an app whose tests are not listed there is never tested."""
    import tomllib

    testpaths = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"])
    with_tests = {path.parent.name for path in ROOT.glob("*/tests") if path.is_dir() and path.parent.name != ".venv"}
    assert with_tests <= testpaths, f"tests outside pyproject's testpaths: {sorted(with_tests - testpaths)}"
    assert set(OUR_PACKAGES) <= testpaths


def test_no_file_holds_a_merge_conflict_marker():
    skipped = {".venv", "var", ".git", "node_modules", "__pycache__"}
    marker = re.compile(r"^(<{7}|>{7}) ", re.M)
    found = []
    for path in ROOT.rglob("*"):
        if (path.suffix not in {".py", ".md", ".html", ".txt", ".po", ".json", ".toml", ".yml", ".cfg", ".js", ".css"}
                or skipped & set(path.relative_to(ROOT).parts) or not path.is_file()):
            continue
        if marker.search(path.read_text(errors="replace")):
            found.append(str(path.relative_to(ROOT)))
    assert not found, f"merge conflict markers in {found}"
