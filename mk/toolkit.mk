.PHONY: test-toolkit test-molecule
test-toolkit: venv
	@echo "toolkit tests: none yet"
test-molecule: venv
	@echo "molecule: none yet"
