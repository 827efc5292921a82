# double-boiler: the two commands a newcomer needs are `make deploy` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# Molecule scenarios to run; `make test SCENARIOS=local` runs one.
SCENARIOS ?= $(sort $(notdir $(wildcard molecule/*)))

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: help deploy stop remove lint unit molecule system-packages test bench lock clean-tooling

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The tooling virtualenv (Ansible from PyPI, Molecule, linters, pytest): pinned,
# rebuilt when the pins change, never part of the app's slug.
$(VENV)/.installed: requirements-dev.txt requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

deploy: $(VENV)/.installed  ## Run the app on this machine (the embedded default target)
	$(BIN)/ansible-playbook deploy.yml

stop: $(VENV)/.installed  ## Stop the app deployed by `make deploy` (its processes only)
	$(BIN)/ansible-playbook playbooks/local.yml -e local_app_state=stopped

remove: $(VENV)/.installed  ## Stop the app and delete its state (virtualenv, database, secret)
	$(BIN)/ansible-playbook playbooks/local.yml -e local_app_state=absent

lint: $(VENV)/.installed  ## yamllint, ansible-lint (production profile), ruff
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(VENV)/.installed  ## pytest: app, modules, stand-ins, dyno semantics, browser, bench smoke
	$(BIN)/pytest

molecule: $(VENV)/.installed  ## Molecule scenarios, each from create to destroy
	@set -e; for scenario in $(SCENARIOS); do \
	  echo "=== molecule test -s $$scenario"; \
	  $(BIN)/molecule test -s $$scenario; \
	done

system-packages:  ## Install the Debian packages the tests need (Docker, PostgreSQL, Redis, Chromium...)
	bash tests/install-system-packages

test: system-packages lint unit molecule  ## Everything the project checks

bench: $(VENV)/.installed  ## The mini benchmark: table, JSON and PNGs in bench/results (BENCH_ARGS=--help)
	$(BIN)/python -m bench $(BENCH_ARGS)

lock:  ## Re-pin requirements.txt from requirements.in in a scratch virtualenv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	{ head -n 2 requirements.txt; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.txt.new
	mv requirements.txt.new requirements.txt && rm -rf .lock-venv

clean-tooling:  ## Remove the tooling virtualenv
	rm -rf $(VENV)
