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
# PROFILE=distributed runs a target on the distributed profile (PostgreSQL, Celery workers, Redis)
# whatever config/factory.yaml says (`profile:`); see docs/operating.md.
ifdef PROFILE
export FACTORY_PROFILE := $(PROFILE)
endif
# The deployment's profile, asked only by the recipes that differ between the two.
PROFILE_NOW = $$($(PY) -m factory_assets.cli distributed profile 2>/dev/null)

.PHONY: install services run run-insurer run-once test lint ui serve bench clean distributed-up distributed-down

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,distributed]"
	touch $(STAMP)

install: $(STAMP)

## PostgreSQL and Redis from Debian, where missing (the distributed profile and its tests need them).
services:
	bash scripts/ensure_services.sh

## End to end on the embedded demo data: generate, ingest, check, prepare, train, score, release.
## PROFILE=distributed: the same demo through the Celery workers (the profile is brought up first).
run: install
	mkdir -p $(DAGSTER_HOME)
	if [ "$(PROFILE_NOW)" = distributed ]; then bash scripts/ensure_services.sh; fi
	$(PY) -m factory_assets.cli demo

## The insurer example deployment (examples/insurer): its own contract, specs, settings, data and instance.
run-insurer: install
	DAGSTER_HOME=$(CURDIR)/examples/insurer/.dagster_home $(PY) -m factory_assets.cli --project examples/insurer insurer

## Every market of a deployment once, in process (no daemon): make run-once PROJECT=<folder>.
run-once: install
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m factory_assets.cli once

test: install services
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Embedded: `dagster dev` (UI and daemon) here. Distributed: the profile's webserver (started if needed).
ui: install
	mkdir -p $(DAGSTER_HOME)
	if [ "$(PROFILE_NOW)" = distributed ]; then \
	  bash scripts/ensure_services.sh && $(PY) -m factory_assets.cli distributed up; \
	else \
	  $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000; \
	fi

## The distributed profile on this machine: PostgreSQL and Redis on loopback, two Celery workers
## (standing for two machines), the daemon and the webserver. Idempotent; stop with distributed-down.
distributed-up: install services
	FACTORY_PROFILE=distributed $(PY) -m factory_assets.cli distributed up

distributed-down: install
	FACTORY_PROFILE=distributed $(PY) -m factory_assets.cli distributed down

## The scoring API (and /reports/); it lists the API keys first and says how to create the first one.
serve: install
	$(PY) -m factory_assets.cli api-key list
	$(VENV)/bin/uvicorn serving.api:app --host 127.0.0.1 --port 8000

clean:
	if compgen -G "data/distributed/pids/*.pid" >/dev/null; then $(MAKE) distributed-down; fi
	rm -rf data .dagster_home examples/*/data examples/*/.dagster_home
