# Issue 18's field features: notifications over RabbitMQ, import plugins, glance-download,
# property protections, unified limits, CORS, metrics. The service-level tests also run in CI
# (`make test-service` runs all of service/tests); this target runs them on their own, then
# molecule/features (lab .110-.111): RabbitMQ deployed beside the service, notifications from the
# deployed glance-api, conversion to raw on by default with the rbd store. Not in CI.
.PHONY: test-features
test-features: deps venv keystone-venv bench-venvs wheelhouse ## issue 18's features: service tests, then molecule/features (RabbitMQ, rbd conversion)
	cd service && $(PYTEST) -q --timeout=900 tests/features
	molecule test -s features
