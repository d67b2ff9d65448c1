# The template's own tasks. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help install run test lint clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed ## create .venv with everything the tests need

# `make run` renders the default service (cookiecutter --no-input) into RUN_DIR,
# replacing the previous one, and serves it from .venv on http://127.0.0.1:8080
# (PORT=9000 make run for another port).
RUN_DIR ?= build/run
run: $(VENV)/.installed ## render the default service into build/run and serve it on :8080
	rm -rf $(RUN_DIR)
	$(VENV)/bin/cookiecutter --no-input --output-dir $(RUN_DIR) .
	cd $(RUN_DIR)/*/ && HOST=127.0.0.1 exec $(abspath $(PY)) main.py

test: $(VENV)/.installed ## run the whole test suite
	$(PY) -m pytest tests

lint: $(VENV)/.installed ## ruff over the framework, hooks, tests and bench
	$(VENV)/bin/ruff check .

clean: ## remove the virtual environment and build output
	rm -rf $(VENV) build .pytest_cache

# `make bench`: ours against waitress, gunicorn, uvicorn and nginx (bench/README.md).
# QUICK=1: one short run, for a smoke test (results in bench/.work/results/).
.PHONY: bench
bench: ## benchmark against the peers (installs wrk, nginx, bench/.venv; QUICK=1: short)
	bash bench/install.sh
	bench/.venv/bin/python bench/run.py $(if $(QUICK),--quick)

# Instructions per request of ours under callgrind (bench/instructions.py), about a minute:
# the figure to judge a hot-path change by. SERVERS=ours,waitress,... WORKLOADS=hello,json,post
.PHONY: bench-instructions
bench-instructions: ## instructions per request under callgrind (SERVERS=ours WORKLOADS=all)
	bash bench/install.sh
	bench/.venv/bin/python bench/run.py --instructions-only --servers $(or $(SERVERS),ours) \
		$(if $(WORKLOADS),--workloads $(WORKLOADS))

# `make docker-test`: tests/docker alone (also part of `make test`). Needs a Docker engine
# with Compose v2, else the tests skip and say why; on a Debian machine without one,
# `. .ci/docker-engine.sh` (as root) starts a private engine, as CI does.
.PHONY: docker-test
docker-test: $(VENV)/.installed ## build the images and run them in a real Docker engine
	$(PY) -m pytest tests/docker -rs
