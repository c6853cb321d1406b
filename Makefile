# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-repeat demo bench lint typecheck clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check proxy miner tests bench
	$(BIN)/ruff format --check proxy miner tests bench

typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

# Flakiness check, not part of `make test`: the test suite N times under a CPU hog, then a
# table of every test that failed at least once. `make test-repeat N=3 ARGS=tests/relay`.
N ?= 10
ARGS ?=
test-repeat: setup
	$(BIN)/python -m tests.repeat $(N) -- $(ARGS)

demo: setup
	$(BIN)/lanes demo

bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
