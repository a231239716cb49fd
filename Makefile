# Two commands matter: `make run` (pipeline + UIs) and `make test` (the whole suite).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin

export MLOPS_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(MLOPS_DATA_DIR)/dagster_home
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
# Links between the two UIs follow the ports chosen here.
export MLOPS_DAGSTER_UI_URL ?= http://127.0.0.1:$(DAGSTER_PORT)
export MLOPS_MLFLOW_UI_URL ?= http://127.0.0.1:$(MLFLOW_PORT)

.PHONY: help install instance partitions seed run serve materialize test lint browser bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --compile-bytecode
	@touch $@

install: $(VENV)/.synced ## Create .venv with the locked dependencies

instance: install ## Prepare the Dagster home (dagster.yaml, never overwritten; pop-up dismissed)
	$(BIN)/mlops-assets init-instance --config deploy/local/dagster.yaml

partitions: seed instance ## Register every landed month as a partition (the UI can backfill them)
	$(BIN)/mlops-assets register-months

seed: install ## Land the NYC flights 2013 data in the landing zone (when empty)
	$(BIN)/mlops-assets seed --if-empty

# MLflow 3's job runner (GenAI jobs) is off: 8 idle processes, ~1.9 GB, that nothing here uses.
run: partitions ## Start Dagster (http://127.0.0.1:3000) and the MLflow UI (http://127.0.0.1:5000)
	@trap 'kill $$mlflow_pid 2>/dev/null; wait $$mlflow_pid 2>/dev/null' EXIT INT TERM; \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --workers 1 --host 127.0.0.1 --port $(MLFLOW_PORT) \
	  --backend-store-uri "sqlite:///$(MLOPS_DATA_DIR)/mlflow.db" \
	  --default-artifact-root "$(MLOPS_DATA_DIR)/mlartifacts" & mlflow_pid=$$!; \
	$(BIN)/dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT) -w workspace.yaml

SERVE_PORT ?= 5001
serve: install ## Serve @champion over REST on http://127.0.0.1:$(SERVE_PORT) (mlflow models serve)
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_TRACKING_URI="sqlite:///$(MLOPS_DATA_DIR)/mlflow.db" \
	  $(BIN)/mlflow models serve -m "models:/flight_delay_classifier@champion" \
	  --env-manager local -h 127.0.0.1 -p $(SERVE_PORT)

materialize: seed instance ## Materialize every asset once from the command line
	$(BIN)/mlops-assets materialize

lint: install ## ruff format check, ruff lint, mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Debian's Chromium drives the browser tests; nothing downloads a browser at run time.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: ## Install Debian's Chromium for the browser tests when it is missing
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y chromium \
	  || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# Three pytest workers on two cores: the tests often wait (on servers starting, the backfill
# daemon's 30 s cadence, retry backoffs), and a third worker fills those waits. Lint and type
# check run beside them; their report follows pytest's, and either failing fails the target.
test: install browser ## The whole test suite (lint and type check included)
	@lint_log=$$(mktemp); trap 'rm -f "$$lint_log"' EXIT; \
	$(MAKE) --no-print-directory lint >"$$lint_log" 2>&1 & lint_pid=$$!; \
	$(BIN)/pytest -n 3 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); tests=$$?; \
	wait $$lint_pid; linted=$$?; cat "$$lint_log"; \
	[ $$linted -eq 0 ] || echo "make test: lint or type check failed (above)"; \
	[ $$tests -eq 0 ] && [ $$linted -eq 0 ]

bench: seed ## Run the benchmarks and rewrite the results table in docs/performance.md
	$(BIN)/python -m benchmarks.run_all

clean: ## Remove the virtual environments (data/ is kept)
	rm -rf $(VENV) $(TOOLS)
