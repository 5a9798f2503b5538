# On a fresh machine: `make demo` (the whole loop), `make serve` (the page and the dashboard), `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: install demo serve lint test browser postgres redis prometheus node client bench mutation mutation-summary clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,mlflow]'
	touch $(STAMP)

install: $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser).
browser: $(CHROMIUM)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver

# The npm package in client/ is built and tested with Debian's node and npm (installed here when missing).
node:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; fi

# The npm package from its one source (src/efimero/serve/static/efimero.js): the exact dev dependencies
# of client/package-lock.json, the package in client/dist/, its types checked, the example app built.
client: node
	cd client && npm ci --no-audit --no-fund --loglevel=error && npm run build && npm run check && npm run example

# The store suite runs on PostgreSQL too: the server at 127.0.0.1:5432 when one answers, else a
# private one started from Debian's binaries (installed here when missing).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; fi

# The feature-store tests start a private redis-server (Debian's, installed here when missing).
redis:
	@if command -v redis-server >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server; fi

# The Grafana dashboard's test scrapes a live service with a private prometheus in a temp dir
# (Debian's, installed here when missing).
prometheus:
	@if command -v prometheus >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus; fi

# The closed loop end to end (train, serve, drift, retrain, canary rollout) in a few minutes; it
# stops the server it starts. What it makes stays in data/, models/ and reports/ for `make serve`.
demo: $(STAMP)
	$(BIN)/efimero demo --workdir .

# The service in the foreground, for a person: the page at / and the dashboard at /dashboard. The
# first time (no production version yet) it trains and deploys one, as the demo's first step does.
serve: $(STAMP)
	@if [ ! -e models/prod/current ]; then \
	  $(BIN)/efimero data generate --size 3000 --seed 1 --output data/synthetic_training_data.csv --validate && \
	  $(BIN)/efimero train --data data/synthetic_training_data.csv --output models/ --cv-folds 0 && \
	  $(BIN)/efimero deploy --source models/ --target production; fi
	$(BIN)/efimero serve --models models/prod --db sqlite:///data/efimero.db

# Lint and type-check src/ (the package ships py.typed); settings in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check src
	$(BIN)/mypy

test: $(STAMP) lint browser postgres redis prometheus node
	$(BIN)/python -m pytest

# The smoke subset at the dependency floors of pyproject.toml (CI runs it after `make test`).
LOWEST := .venv-lowest
test-lowest: browser postgres
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/lowest_constraints.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[dev]'
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider tests/store tests/serve/test_api.py tests/test_api.py tests/data tests/cli

bench: $(STAMP) node
	$(BIN)/python bench/bench_predict.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_serve.py
	$(BIN)/python bench/bench_faults.py
	$(BIN)/python bench/bench_experiments.py
	$(BIN)/python bench/bench_first_paint.py

# Mutation testing, outside `make test`: mutmut mutates collect/, retrain/, deploy/, registry/ and monitor/
# and runs, for each mutant, the fast tests that reach the mutated function ([tool.mutmut] in pyproject.toml).
# All of it takes hours on 2 cores; MUTANTS narrows it to globs (make mutation MUTANTS='efimero.collect.*').
# Verdicts are cached in mutants/, so a later run tries only new or changed code; name mutants to retry them.
# The summary counts every mutant of the five packages, those not run yet as "not checked".
MUTANTS ?=
mutation: $(STAMP)
	OMP_NUM_THREADS=1 nice -n 15 $(BIN)/mutmut run $(MUTANTS)
	@$(MAKE) --no-print-directory mutation-summary

mutation-summary:
	@$(BIN)/mutmut results --all true | awk -F': ' '{ split($$1, name, "."); n[name[2], $$2]++; p[name[2]] } \
	  END { split("killed|survived|timeout|no tests|suspicious|not checked", s, "|"); \
	  printf "%-9s", "package"; for (i = 1; i <= 6; i++) printf " %11s", s[i]; print " (other)"; \
	  for (q in p) { printf "%-9s", q; o = 0; for (k in n) { split(k, pk, SUBSEP); if (pk[1] == q) o += n[k] } \
	  for (i = 1; i <= 6; i++) { printf " %11d", n[q, s[i]]; o -= n[q, s[i]] } print " " o } }'

clean:
	rm -rf $(VENV) $(LOWEST) data models reports .pytest_cache test-output client/node_modules client/dist client/example/dist
