# The two commands: `make run` starts everything; `make test` runs the whole suite.
# Supported Python: CPython 3.11, 3.12 and 3.13 (pick one with `make PYTHON=python3.13 ...`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench check-wheels

# The venv itself, made by the chosen interpreter once it is known to be a supported version.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "AgentOS needs Python 3.11 to 3.13: make PYTHON=python3.13 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# What production runs (make run). A stamp per requirements file, so editing either reinstalls.
$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# The runtime plus the test and lint tools (make test, make lint, CI).
$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(PY) -m agentos.launcher run

test: $(VENV)/.dev
	$(PY) -m agentos.launcher test $(ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

# Every pin of requirements.txt and requirements-dev.txt resolves to a wheel for CPython 3.11,
# 3.12 and 3.13 on manylinux x86_64 and aarch64 (asks the package index; nothing is installed).
check-wheels: $(VENV)/.runtime
	$(PY) -m bench.check_wheels $(ARGS)

# Benchmark-only dependencies (LangGraph, its PostgreSQL checkpointer) stay out of requirements.txt.
bench: $(VENV)/.dev
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench.run_all $(ARGS)
