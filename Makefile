# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: install demo lint test browser postgres bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser).
browser: $(CHROMIUM)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver

# The store suite runs on PostgreSQL too: the server at 127.0.0.1:5432 when one answers, else a
# private one started from Debian's binaries (installed here when missing).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; fi

demo: $(STAMP)
	$(BIN)/efimero data generate --size 5000 --seed 42 --output data/synthetic_training_data.csv --validate --export-metadata
	$(BIN)/efimero data generate --size 1000 --seed 7 --output data/validation_set.csv --validate
	$(BIN)/efimero train --data data/synthetic_training_data.csv --output models/
	$(BIN)/efimero models list --models models/
	$(BIN)/efimero validate --models models/ --test-data data/validation_set.csv
	$(BIN)/efimero deploy --source models/ --target staging --validate --test-data data/validation_set.csv
	$(BIN)/efimero deployments --target staging

# Lint and type-check src/ (the package ships py.typed); settings in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check src
	$(BIN)/mypy

test: $(STAMP) lint browser postgres
	$(BIN)/python -m pytest

# The smoke subset at the dependency floors of pyproject.toml (CI runs it after `make test`).
LOWEST := .venv-lowest
test-lowest: browser postgres
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/lowest_constraints.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e '.[dev]'
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider tests/store tests/serve/test_api.py tests/test_api.py tests/data

bench: $(STAMP)
	$(BIN)/python bench/bench_predict.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_serve.py
	$(BIN)/python bench/bench_faults.py

clean:
	rm -rf $(VENV) $(LOWEST) data models .pytest_cache test-output
