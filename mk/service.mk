# The image service's whole suite: unit, functional, and end-to-end (real MariaDB, memcached,
# Keystone and the real clients), slow tests included. Keystone runs from its own virtualenv.
# bench-venvs: upstream Glance 33, the other region of tests/features/test_glance_download.py.
.PHONY: test-service keystone-venv
keystone-venv: ## .venv-keystone: Keystone 30, for the service's end-to-end tests
	bash scripts/keystone-venv.sh

test-service: deps venv keystone-venv bench-venvs ## the service's suite: unit, functional, end to end, Ceph and Swift integration
	cd service && $(PYTEST) -q --timeout=900 tests
