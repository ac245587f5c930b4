# The project's commands. Everything installs from this repository's own files: the
# package and its extras from pyproject.toml (runtime pins in requirements.txt), the
# system tools from Debian with `make deps`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test web worker migrate bench chaos chaos-short deps peers lint install clean

# The package, editable, with the test, dev and bench extras.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

## make run: embedded PostgreSQL (unless DATABASE_URL), migrations, API on :$PORT, one worker
run: $(STAMP)
	$(BIN)/python ops/run_dev.py

## make test: lint, types, architecture contracts, then the whole suite (hermetic)
test: $(STAMP) deps peers lint
	$(BIN)/python -m pytest -n 3  # three processes on two cores: most tests wait on sockets, not CPU

## make deps: the system tools the tests and the benchmarks drive, from Debian (needs
## root): Chromium for the browser tests (Playwright drives the system binary; browser
## downloads are not possible here), wrk and hey for load, promtool to check and unit-test
## ops/prometheus/alerts.yml, redis-server and Node.js for the benchmark's peers. Tests that need one of them fail with a message naming this
## target. Each entry is a command, or command:package where Debian's package is named
## otherwise (promtool comes with the prometheus package, whose server a host with
## systemd then starts: stop it if you do not want it there).
DEBIAN_TOOLS := chromium wrk hey promtool:prometheus redis-server node:nodejs npm
deps:
	@missing=""; for tool in $(DEBIAN_TOOLS); do command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt-get (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## make peers: the benchmark's Node.js peer (Express + BullMQ, bench/peers/bullmq) from its
## package-lock.json; its Python peer (Celery) comes with the bench extra
BULLMQ := bench/peers/bullmq
$(BULLMQ)/node_modules/.installed: $(BULLMQ)/package-lock.json
	npm ci --prefix $(BULLMQ) --no-audit --no-fund --loglevel=error
	touch $@

peers: deps $(BULLMQ)/node_modules/.installed

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## production pieces, one by one, against DATABASE_URL (the package's console scripts)
web: $(STAMP)
	$(BIN)/jobs-web

## make worker: WORKER_CONCURRENCY jobs at once (4); /healthz and /metrics on
## WORKER_METRICS_PORT when set
worker: $(STAMP)
	$(BIN)/jobs-worker

migrate: $(STAMP)
	$(BIN)/jobs-migrate

## make bench: the service against its references and against Celery + Redis and
## BullMQ + Redis (bench/run.py; meant to stay under 15 minutes, see bench/README.md);
## writes bench/results.md and .json
bench: $(STAMP) deps peers
	$(BIN)/python -m bench.run

## make chaos: the chaos test, full plan (about 15 minutes): the service as separate
## processes under load while workers, gunicorn workers and PostgreSQL are killed, stopped
## and restarted (a 45 s outage); prints a pass/fail table, also in var/chaos/full.md
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos

## make chaos-short: the same in a few minutes, with a 12 s outage (var/chaos/short.md);
## CI runs it after make test
chaos-short: $(STAMP)
	$(BIN)/python -m tests.chaos --short

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
