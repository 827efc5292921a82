# double-boiler: the two commands a newcomer needs are `make deploy` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# Molecule scenarios to run; `make molecule SCENARIOS=default` runs one (default: the local target).
SCENARIOS ?= $(sort $(notdir $(wildcard molecule/*)))
# Where `make deploy` deploys: inventories/local (this machine), inventories/heroku, inventories/dokku.
INVENTORY ?= inventories/local
COLLECTION := collections/ansible_collections/double_boiler/paas
# ansible-test bootstraps pip in each sanity virtualenv with a script it downloads from
# ci-files.testing.ansible.com; offline, tools/ansible_test_get_pip.py stands in for it.
ANSIBLE_TEST_GET_PIP := $(HOME)/.ansible/test/cache/get_pip_24_2.py

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: help deploy stop remove lint sanity collection unit role-docs molecule system-packages test bench lock clean-tooling

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The tooling virtualenv (Ansible from PyPI, Molecule, linters, pytest): pinned,
# rebuilt when the pins change, never part of the app's slug.
$(VENV)/.installed: requirements-dev.txt requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

deploy: $(VENV)/.installed  ## Run the app on this machine, or where INVENTORY=inventories/<target> says
	$(BIN)/ansible-playbook deploy.yml -i $(INVENTORY)

stop: $(VENV)/.installed  ## Stop the app deployed by `make deploy` (its processes only)
	$(BIN)/ansible-playbook playbooks/local.yml -e local_app_state=stopped

remove: $(VENV)/.installed  ## Stop the app and delete its state (virtualenv, database, secret)
	$(BIN)/ansible-playbook playbooks/local.yml -e local_app_state=absent

lint: $(VENV)/.installed sanity collection  ## yamllint, ansible-lint (production profile), ruff, ansible-test sanity, collection build
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# ansible-test must run from the collection's own directory (ansible_collections/<ns>/<name>).
# There, inside this repository's git work tree, it lists the collection's files with git:
# tracked and untracked ones, minus what .gitignore ignores (its own tests/output/ among them).
# --local: every test on this machine's Python 3.11 (compile and import skip the other
# Pythons the modules support: they are not installed; --docker would need ansible-test's
# container image). pslint and shellcheck find no PowerShell or shell files, and changelog
# nothing to check (CHANGELOG.md is kept by hand, no changelogs/config.yaml), so they pass
# vacuously. The ignores, each with its reason: tests/sanity/ignore-2.19.txt.
sanity: $(VENV)/.installed  ## ansible-test sanity on the double_boiler.paas collection (local Python, no containers)
	@test -e $(ANSIBLE_TEST_GET_PIP) || install -D -m 0644 tools/ansible_test_get_pip.py $(ANSIBLE_TEST_GET_PIP)
	cd $(COLLECTION) && $(BIN)/ansible-test sanity --local --python 3.11

collection: $(VENV)/.installed  ## Build the double_boiler.paas collection tarball into build/
	$(BIN)/ansible-galaxy collection build --force --output-path build $(COLLECTION)

unit: $(VENV)/.installed  ## pytest: app, modules, stand-ins, dyno semantics, browser, bench smoke
	$(BIN)/pytest

role-docs: $(VENV)/.installed  ## Regenerate the roles' README variable tables from meta/argument_specs.yml
	$(BIN)/python -m tools.role_docs

# A failed scenario ends with its failing tasks and tests again: CI may keep only the tail.
molecule: $(VENV)/.installed  ## Molecule scenarios, each from create to destroy
	@set -eo pipefail; for scenario in $(SCENARIOS); do \
	  echo "=== molecule test -s $$scenario"; \
	  log=$$(mktemp); \
	  if ! $(BIN)/molecule test -s $$scenario 2>&1 | tee $$log; then \
	    echo "=== molecule test -s $$scenario failed; its failing tasks and tests:"; \
	    grep -E -A12 'fatal: |failed: \[| E {6}|FAILED|ERROR ' $$log | tail -n 80; \
	    rm -f $$log; exit 1; \
	  fi; \
	  rm -f $$log; \
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
