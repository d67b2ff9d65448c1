# The template's own tasks. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help install test lint clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## create .venv with everything the tests need

test: $(VENV)/.installed ## run the whole test suite
	$(PY) -m pytest tests

lint: $(VENV)/.installed ## ruff over the framework, hooks, tests and bench
	$(VENV)/bin/ruff check .

clean: ## remove the virtual environment and build output
	rm -rf $(VENV) build .pytest_cache
