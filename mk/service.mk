.PHONY: test-service
test-service: deps venv
	cd service && python -m pytest -q
