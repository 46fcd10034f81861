# Benchmarks: the bundled image service side by side with upstream Glance (bench/README.md).
# `make bench` is the full run (about 30-40 minutes); `make bench-smoke` proves the harness
# still runs (tiny sizes, one round; a few minutes once the virtualenvs exist).
.PHONY: bench bench-smoke bench-venvs

bench-venvs: deps venv keystone-venv
	bash bench/setup-upstream.sh

bench: bench-venvs
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

bench-smoke: bench-venvs
	$(VENV)/bin/python bench/run.py --smoke $(BENCH_ARGS)
