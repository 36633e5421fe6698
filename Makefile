# One target per habit. Every target installs what it needs first (a fresh clone works).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export FACTORY_DATA_DIR ?= $(CURDIR)/data

.PHONY: install run test lint ui serve bench clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## End to end on the embedded demo data: generate, ingest, check, prepare, train, score, release.
run: install
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m factory_assets.cli demo

test: install
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

ui: install
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

serve: install
	$(VENV)/bin/uvicorn serving.api:app --host 127.0.0.1 --port 8000

clean:
	rm -rf data .dagster_home
