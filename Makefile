# Glance Toolkit. The two commands: `make lab` (deploy the all-in-one lab) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help deps venv test lint

help:
	@echo "make lab          create the all-in-one lab and deploy the image service into it"
	@echo "make lab-destroy  remove the lab"
	@echo "make test         the whole test suite (what CI runs)"

deps:
	bash scripts/host-deps.sh

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt service/requirements.txt service/test-requirements.txt service/pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip wheel setuptools
	$(VENV)/bin/pip install -q -r requirements.txt -r service/test-requirements.txt -c service/requirements.txt -e ./service
	touch $@

# Each part of the project owns one mk/*.mk file with its targets.
include $(sort $(wildcard mk/*.mk))

test: deps venv lint test-service test-toolkit test-molecule bench-smoke
	@echo "make test: all suites passed"

lint: venv
	ruff check service bench tests
	ruff format --check service bench tests
