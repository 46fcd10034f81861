# Issue 19: taking over a running upstream Glance and handing back (docs/ADOPTION.md).
# service/tests/adopt converts between upstream Glance 33 (from PyPI, its own virtualenv made
# by bench/setup-upstream.sh: its schema built by its own migrations, its glance-api under
# uwsgi) and our real processes; tests/test_glance_adopt.py runs roles/glance_adopt's check
# and sample comparison by ansible. The molecule scenario (molecule/adopt) is not written yet.
.PHONY: test-adopt

test-adopt: deps venv keystone-venv bench-venvs ## issue 19: adopt/handback against upstream Glance 33, the role's tests
	cd service && python -m pytest -q --timeout=900 tests/adopt
	python -m pytest -q tests/test_glance_adopt.py
