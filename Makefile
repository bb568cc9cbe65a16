# Everyday commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export CITYLAKE_HOME ?= $(CURDIR)/var

.PHONY: demo test venv lint clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/citylake demo

test: $(STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest tests

bench: $(STAMP)
	$(BIN)/python scripts/bench_conform.py

lint: $(STAMP)
	$(BIN)/python -m ruff check . || true

clean:
	rm -rf var .pytest_cache test-artifacts
