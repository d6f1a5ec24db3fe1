# Pilothouse — every target creates .venv and installs what it needs by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the agent in standalone mode on the example desired state (test plugin).
run: $(STAMP)
	$(BIN)/pilothouse agent run --config examples/standalone/agent.yaml

## Lint, type-check, check layering, then run every test.
test: lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check agent plugins hub tests bench examples tools
	$(BIN)/ruff format --check agent plugins hub tests bench examples tools
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format agent plugins hub tests bench examples tools
	$(BIN)/ruff check --fix agent plugins hub tests bench examples tools

bench: $(STAMP)
	$(BIN)/python bench/agent_scale.py

clean:
	rm -rf $(VENV) .pilothouse .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
