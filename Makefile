# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 1

.PHONY: run test install install-test chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: set up and serve on SQLite (data/reconcile.db) with the shipped model
run: install
	$(BIN)/reconcile db upgrade
	$(BIN)/reconcile serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

## test: set up (venv, test extras, Chromium) and run the whole test suite
test: install-test chromium
	$(BIN)/pytest

## chromium: Debian's Chromium for the review-UI browser tests, when it is missing
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

## bench: the benchmarks (long; not part of `make test`)
bench: install-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
