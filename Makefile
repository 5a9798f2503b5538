# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/efimero data generate --size 5000 --seed 42 --output data/synthetic_training_data.csv --validate --export-metadata
	$(BIN)/efimero data generate --size 1000 --seed 7 --output data/validation_set.csv --validate
	$(BIN)/efimero train --data data/synthetic_training_data.csv --output models/
	$(BIN)/efimero models list --models models/
	$(BIN)/efimero validate --models models/ --test-data data/validation_set.csv

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_predict.py
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf $(VENV) data models .pytest_cache
