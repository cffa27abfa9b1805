# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 1

.PHONY: run test install install-test install-spark chromium bench clean

UV_VERSION := 0.13.8
# pip refuses anything whose version or hash differs from the lock
LOCKED_INSTALL := $(BIN)/pip install -q --require-hashes --no-deps --only-binary :all: -r
PROJECT_INSTALL := $(BIN)/pip install -q --no-deps --no-build-isolation -e .
# pyspark is an sdist only on PyPI: hashes still required, binaries not (see requirements/spark.txt)
SPARK_INSTALL := $(BIN)/pip install -q --require-hashes --no-deps --no-build-isolation -r

.PHONY: lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The lock files (requirements/*.txt, every package of the tree with its hashes) are
# what run and test install; pyproject.toml keeps the ranges a library user needs.
$(VENV)/.installed: requirements/run.txt pyproject.toml | $(BIN)/python
	$(LOCKED_INSTALL) requirements/run.txt
	$(PROJECT_INSTALL)
	touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(BIN)/python
	$(LOCKED_INSTALL) requirements/test.txt
	$(PROJECT_INSTALL)
	touch $(VENV)/.installed $@

## lock: re-resolve the lock files to the newest releases pyproject.toml allows
## (then `make test`: the scorer-conformance tests decide whether the upgrade is safe)
lock:
	$(PYTHON) -m venv .uv-venv && .uv-venv/bin/pip install -q uv==$(UV_VERSION)
	for extra in run test; do \
		.uv-venv/bin/uv pip compile pyproject.toml requirements/build.in \
			$$( [ $$extra = test ] && echo --extra test ) --upgrade --generate-hashes \
			--universal --python-version 3.11 -q -o requirements/$$extra.txt; \
	done
	.uv-venv/bin/uv pip compile requirements/spark.in --upgrade --generate-hashes \
		--universal --python-version 3.11 -q -o requirements/spark.txt

$(VENV)/.installed-spark: requirements/spark.txt | $(VENV)/.installed-test
	$(SPARK_INSTALL) requirements/spark.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
## install-spark: the Spark engine of `reconcile resolve --engine spark` (needs Java 17)
install-spark: $(VENV)/.installed-spark

## run: set up and serve on SQLite (data/reconcile.db) with the shipped model
run: install
	$(BIN)/reconcile db upgrade
	$(BIN)/reconcile serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

## test: set up (venv, test extras, Chromium) and run the whole test suite
test: install-test install-spark chromium
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
	rm -rf $(VENV) .uv-venv .pytest_cache build *.egg-info src/*.egg-info
