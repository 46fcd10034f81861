# Glance Toolkit. The two commands: `make lab` (deploy the all-in-one lab) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
# pytest with a temporary directory of its own (scripts/pytest-own-tmp.sh says why).
PYTEST := bash $(CURDIR)/scripts/pytest-own-tmp.sh
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help deps venv test lint

# Every target has a `## ` note on its rule line: `make help` prints them, one line each
# (tests/test_makefile.py fails on a target without one).
help: ## this list
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-zA-Z0-9_-]+:[^=]*## / { printf "make %-24s %s\n", $$1, $$2 }' \
		$(MAKEFILE_LIST)

deps: ## the deploy host's Debian packages (scripts/host-deps.sh, as root)
	bash scripts/host-deps.sh

# mysqlclient (the service's MariaDB driver) has no Linux wheel on PyPI: pip builds it against
# libmariadb-dev, which `make deps` installs (root); say so instead of a compiler's error.
NEED_LIBMARIADB = pkg-config --exists libmariadb || { echo "libmariadb-dev and pkg-config are missing: run make deps (as root) first" >&2; exit 1; }

venv: $(VENV)/.installed ## .venv: Ansible, molecule, the linters, the service (editable) and its test tools
$(VENV)/.installed: requirements.txt service/requirements.txt service/test-requirements.txt service/pyproject.toml
	@$(NEED_LIBMARIADB)
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip wheel setuptools
	$(VENV)/bin/pip install -q -r requirements.txt -r service/test-requirements.txt -c service/requirements.txt -e ./service
	touch $@

# Each part of the project owns one mk/*.mk file with its targets.
include $(sort $(wildcard mk/*.mk))

test: deps venv lint test-service test-toolkit test-molecule bench-smoke ## everything CI runs
	@echo "make test: all suites passed"

lint: venv ## ruff check and format --check (service/, bench/, tests/); the service's import layers
	ruff check service bench tests
	ruff format --check service bench tests
	cd service && lint-imports --no-cache  # contracts: [tool.importlinter] in service/pyproject.toml
