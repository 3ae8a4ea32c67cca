# The two commands: `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m agentos.launcher run

test: $(VENV)/.installed
	$(PY) -m agentos.launcher test $(ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

# Benchmark-only dependencies (LangGraph, its PostgreSQL checkpointer) stay out of requirements.txt.
bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench.run_all $(ARGS)
