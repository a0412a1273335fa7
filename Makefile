# reviewrank — `make serve` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ADDRESS ?= 127.0.0.1:50051

.PHONY: install serve demo-data test lint format gen evaluate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Load the demo data (the real reviews data set) if the database is empty.
demo-data: install
	$(VENV)/bin/reviewrank import --if-empty

## Serve on $(ADDRESS) with the demo data.
serve: demo-data
	exec $(VENV)/bin/reviewrank serve --address $(ADDRESS)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check service ranking tests
	$(VENV)/bin/ruff format --check service ranking tests
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix service ranking tests
	$(VENV)/bin/ruff format service ranking tests

## Regenerate service/gen and proto/reviewrank.protoset from proto/.
gen: install
	$(PY) -m service.codegen

## Offline evaluation of ranking quality on the reviews data set (writes docs/evaluation.*).
evaluate: install
	$(VENV)/bin/reviewrank evaluate --table docs/evaluation.md --plot docs/evaluation.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
