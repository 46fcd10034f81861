# Benchmarks: the bundled image service side by side with upstream Glance (bench/README.md).
# `make bench` is the full run (about an hour); `make bench-smoke` proves the harness
# still runs (tiny sizes, one round; under 3 minutes once the virtualenvs exist).
# BENCH_ARGS passes options through, e.g. `make bench BENCH_ARGS="--db mariadb --rounds 5"`.
.PHONY: bench bench-smoke bench-venvs bench-unit

bench-venvs: deps venv keystone-venv ## upstream Glance 33's virtualenv for the benchmarks
	bash bench/setup-upstream.sh

bench: bench-venvs ## the full benchmark against upstream Glance (BENCH_ARGS="--db mariadb ...")
	$(VENV)/bin/pip install -q -r bench/requirements-bench.txt -c service/requirements.txt
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

bench-smoke: bench-venvs bench-unit ## the benchmark harness on tiny sizes, one round
	$(VENV)/bin/python bench/run.py --smoke $(BENCH_ARGS)

bench-unit: venv ## the harness's own tests (bench/tests)
	$(PYTEST) -q bench/tests
