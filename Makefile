# `make run` (the app on http://127.0.0.1:8000), `make test` (the whole suite), `make lint` (ruff, as CI runs it).
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest-xdist workers for the engine and API tests: one per core by default (JOBS=0 runs them in one process)
JOBS ?= auto
# workers for the browser tests: 0 = one process (each worker would start its own server and Chromium)
BROWSER_JOBS ?= 0

.PHONY: install run test test-fast test-browser lint format bench vendor wheel clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/backprop-viz serve --host $(HOST) --port $(PORT)

# Two pytest runs: the engine and API tests spread over the cores (a test file stays in one worker, so its
# fixtures are built once), then the browser tests on their own (anyio-based tests cannot run after a Playwright
# test in the same process). pytest's exit status 5 (no test collected) fails the target like any failure.
test: test-fast test-browser

test-fast: install
	$(PY) -m pytest -n $(JOBS) --dist loadfile --ignore=tests/browser tests

test-browser: install
	$(PY) -m pytest -n $(BROWSER_JOBS) tests/browser

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Rewrites files: run it on a tree nobody else is editing.
format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/race.py
	$(PY) benchmarks/server.py

vendor:
	bash scripts/vendor_assets.sh

wheel: install
	$(PY) -m pip wheel . --no-deps -w dist

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .schemathesis screenshots *.egg-info build dist
