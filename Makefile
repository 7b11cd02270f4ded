# make serve: install into .venv and start the API (127.0.0.1:8000) with one worker.
# make test:  install into .venv and run the test suite (lint and type checks included).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test worker lint bench-service clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/python -m app.serve

worker: $(STAMP)
	$(VENV)/bin/python -m workers

lint: $(STAMP)
	$(VENV)/bin/ruff check app workers models migrations tests bench
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
