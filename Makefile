# `make run` and `make test` work on a fresh clone: both create .venv and install first; `make test`
# also installs the integration tests' system packages where missing (.ci/test-deps: apt-get).
PYTHON ?= python3.11
# Python keeps compiled files between runs even where the environment says not to: with
# PYTHONDONTWRITEBYTECODE set, every pytest process rewrites the asserts of the tests and of every
# pytest plugin's modules again (what that cost: docs/performance.md).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPEC ?= examples/seed.yaml

.PHONY: run test test-deps test-fast ui lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/sweep run $(SPEC)

test-deps:
	.ci/test-deps

# `make test`: every test in two lanes (pytest-xdist), whatever the machine, as the slow tests,
# which start Ray clusters and MLflow servers and kill them on a timetable, are each sized for
# 2 CPUs. The tests on the session's shared services run in one lane; the rest go to whichever is
# free, the longest first and the fast ones last (tests/lanes.py; measured in docs/performance.md).
# `make test-fast`: the fast tests alone on every core (each is self-contained; a worker that runs
# out takes queued tests from the others).
test: $(STAMP) test-deps
	$(BIN)/python -m pytest --numprocesses=2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" --numprocesses=auto --maxprocesses=4 --dist worksteal

ui: $(STAMP)
	$(BIN)/sweep ui

lint: $(STAMP)
	$(BIN)/ruff check sweep services tests benchmarks
	$(BIN)/ruff format --check sweep services tests benchmarks
	$(BIN)/mypy sweep services

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) runs .pytest_cache
