# Pilothouse — every target creates .venv and installs what it needs by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pilothouse/ links to the part folders; ruff is given the real folders once each.
SOURCES := pilothouse/__init__.py pilothouse/__main__.py pilothouse/cli foundation agent plugins \
           hub modelpkg serving tests bench examples tools

.PHONY: install run run-standalone test lint format bench image demo demo-down demo-clean clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The whole product on this machine: hub + agent (process plugin) + example model.
run: $(STAMP)
	$(BIN)/pilothouse up

## The agent alone, in standalone mode, on a simulated infrastructure (test plugin).
run-standalone: $(STAMP)
	$(BIN)/pilothouse agent run --config examples/standalone/agent.yaml

## Lint, type-check, check layering, then run every test.
test: lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

bench: $(STAMP)
	$(BIN)/python bench/agent_scale.py
	$(BIN)/python bench/hub_events.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/ui_render.py
	$(BIN)/python bench/docker_plugin.py

## The container image (README, "Container image"). BASE=auto picks the official Python
## image when it is here or pullable, else a local debootstrap base; BASE=official|local
## forces one, any other value is the base image itself. Cached: seconds the second time.
IMAGE ?= pilothouse:latest
BASE  ?= auto
image: $(STAMP)
	IMAGE='$(IMAGE)' BASE='$(BASE)' PIP='$(BIN)/pip' bash tools/docker_image.sh

## The demo stack (docker-compose.yml; README, "Run it in containers"): hub, agent for a
## docker PE, one-shot setup. `make demo` builds the image if needed and waits for a
## prediction; demo-down stops it (named volumes kept), demo-clean removes those too.
## PROFILE=postgres: PostgreSQL (its image built here too) and two hub replicas on it.
PROFILE ?= sqlite
demo: $(STAMP)
	IMAGE='$(IMAGE)' PIP='$(BIN)/pip' PROFILE='$(PROFILE)' $(BIN)/python tools/demo.py up

demo-down:
	PROFILE='$(PROFILE)' $(PYTHON) tools/demo.py down

demo-clean:
	PROFILE='$(PROFILE)' $(PYTHON) tools/demo.py clean

clean:
	rm -rf $(VENV) .pilothouse .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
