# Two commands: `make run` (the app on http://127.0.0.1:8000) and `make test` (the whole suite, browser tests included).
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test bench vendor clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/backprop-viz serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/race.py
	$(PY) benchmarks/server.py

vendor:
	bash scripts/vendor_assets.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .schemathesis screenshots *.egg-info
