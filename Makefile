# One command per habit. The venv lives in .venv; every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: run demo serve test lint bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install: $(BIN)/python
	$(PIP) install -q -e .

install-dev: $(BIN)/python
	$(PIP) install -q -e '.[dev,edge]'

## Provision the demo tenants on the embedded PostgreSQL (or CAMCOUNT_DATABASE_URL), print them,
## then serve the API with the job scheduler beside it until Ctrl-C.
run: install
	$(BIN)/camcount demo
	@echo "API on http://$${CAMCOUNT_API_HOST:-127.0.0.1}:$${CAMCOUNT_API_PORT:-8000} (docs at /docs), jobs running beside it; Ctrl-C stops both."
	@$(BIN)/camcount worker & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/camcount serve

## The demo tenants only (no server).
demo: install
	$(BIN)/camcount demo

## The whole test suite, in parallel, against a real PostgreSQL.
test: install-dev
	$(BIN)/pytest -n $${PYTEST_WORKERS:-4} --dist loadgroup

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .camcount .pytest_cache .mypy_cache .ruff_cache
