# One target per habit. Every target installs what it needs first (a fresh clone works).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# PROJECT=<folder> runs any target on another deployment (its own data and Dagster instance).
ifdef PROJECT
export FACTORY_PROJECT_DIR := $(abspath $(PROJECT))
export DAGSTER_HOME := $(abspath $(PROJECT))/.dagster_home
endif
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install run run-insurer run-once test lint ui serve bench clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## End to end on the embedded demo data: generate, ingest, check, prepare, train, score, release.
run: install
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m factory_assets.cli demo

## The insurer example deployment (examples/insurer): its own contract, specs, settings, data and instance.
run-insurer: install
	DAGSTER_HOME=$(CURDIR)/examples/insurer/.dagster_home $(PY) -m factory_assets.cli --project examples/insurer insurer

## Every market of a deployment once, in process (no daemon): make run-once PROJECT=<folder>.
run-once: install
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m factory_assets.cli once

test: install
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

ui: install
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## The scoring API (and /reports/); it lists the API keys first and says how to create the first one.
serve: install
	$(PY) -m factory_assets.cli api-key list
	$(VENV)/bin/uvicorn serving.api:app --host 127.0.0.1 --port 8000

clean:
	rm -rf data .dagster_home examples/*/data examples/*/.dagster_home
