# The commands of contract §1. Everything installs from this repository's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test web worker migrate bench bench-tools lint install clean browser

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

## make run: embedded PostgreSQL (unless DATABASE_URL), migrations, API on :$PORT, one worker
run: $(STAMP)
	$(BIN)/python ops/run_dev.py

## make test: lint, types, architecture contracts, then the whole suite (hermetic)
test: $(STAMP) lint browser bench-tools
	$(BIN)/python -m pytest

## make browser: Debian's Chromium for the Playwright tests (browser downloads are not
## possible here, so Playwright drives the system binary, CHROMIUM=/usr/bin/chromium)
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  echo "installing Chromium with apt-get (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## production pieces, one by one, against DATABASE_URL
web: $(STAMP)
	$(BIN)/gunicorn -c ops/gunicorn.conf.py wsgi:app

## make worker: WORKER_CONCURRENCY jobs at once (4); /healthz and /metrics on
## WORKER_METRICS_PORT when set
worker: $(STAMP)
	$(BIN)/python -m queue_jobs.worker

migrate: $(STAMP)
	$(BIN)/python -m queue_jobs.db.migrate

## make bench: the service against its references (bench/run.py, under 10 minutes);
## writes bench/results.md and bench/results.json
bench: $(STAMP) bench-tools
	$(BIN)/python bench/run.py

## make bench-tools: Debian's load generators wrk and hey, with apt-get if missing (pgbench
## comes with the embedded PostgreSQL's wheel)
bench-tools:
	@command -v wrk >/dev/null && command -v hey >/dev/null || { \
	  echo "installing wrk and hey with apt-get (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk hey; }

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
