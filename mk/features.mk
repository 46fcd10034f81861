# Issue 18's field features: notifications over RabbitMQ, import plugins, glance-download,
# property protections, unified limits, CORS, metrics. The service-level tests also run in CI
# (`make test-service` runs all of service/tests); this target runs them on their own.
.PHONY: test-features
test-features: deps venv keystone-venv bench-venvs ## issue 18's features: notifications, import plugins, limits, metrics (service tests)
	cd service && python -m pytest -q --timeout=900 tests/features
