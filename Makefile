# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-repeat demo bench lint typecheck chromium clean

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

# The dashboard's browser tests drive Debian's Chromium. Install it when it is missing and this
# machine allows it (root with apt-get, as CI runs); elsewhere pytest skips them, loudly.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      >/dev/null) || echo "make: chromium did not install: the browser tests will be skipped"; \
	  else \
	    echo "make: no chromium, and no root apt-get to install it: browser tests will be skipped"; \
	  fi; \
	}

test: lint typecheck chromium
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
