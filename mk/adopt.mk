# Issue 19: taking over a running upstream Glance and handing back (docs/ADOPTION.md).
# service/tests/adopt converts between upstream Glance 33 (from PyPI, its own virtualenv made
# by bench/setup-upstream.sh: its schema built by its own migrations, its glance-api under
# uwsgi) and our real processes; tests/test_glance_adopt.py runs roles/glance_adopt's check
# and sample comparison by ansible; molecule/adopt takes over an upstream Glance 33 on a lab host
# (.120), installed from wheelhouse-upstream/ (the lab has no package index), and hands back.
.PHONY: test-adopt wheelhouse-upstream

WHEELHOUSE_UPSTREAM := $(CURDIR)/wheelhouse-upstream
# uwsgi's binary links libpython: built by the system's python3 (Debian 12, as the lab hosts),
# not by the venv's interpreter, which may be another build of 3.11 (pyenv on the CI host).
UWSGI_BUILD_PYTHON ?= /usr/bin/python3

wheelhouse-upstream: $(WHEELHOUSE_UPSTREAM)/.built ## wheelhouse-upstream/: upstream Glance 33's pinned wheels and uwsgi, for molecule/adopt
$(WHEELHOUSE_UPSTREAM)/.built: bench/requirements-upstream.txt | venv
	mkdir -p $(WHEELHOUSE_UPSTREAM)
	grep -vi '^uwsgi==' bench/requirements-upstream.txt >$(WHEELHOUSE_UPSTREAM)/.no-uwsgi.txt
	$(VENV)/bin/pip wheel -q --wheel-dir $(WHEELHOUSE_UPSTREAM) -r $(WHEELHOUSE_UPSTREAM)/.no-uwsgi.txt
	rm -rf $(WHEELHOUSE_UPSTREAM)/.build && $(UWSGI_BUILD_PYTHON) -m venv $(WHEELHOUSE_UPSTREAM)/.build
	$(WHEELHOUSE_UPSTREAM)/.build/bin/pip install -q wheel setuptools
	rm -f $(WHEELHOUSE_UPSTREAM)/[uU][wW][sS][gG][iI]-*.whl
	$(WHEELHOUSE_UPSTREAM)/.build/bin/pip wheel -q --no-cache-dir --no-build-isolation --no-deps \
		--wheel-dir $(WHEELHOUSE_UPSTREAM) $$(grep -i '^uwsgi==' bench/requirements-upstream.txt)
	rm -rf $(WHEELHOUSE_UPSTREAM)/.build $(WHEELHOUSE_UPSTREAM)/.no-uwsgi.txt
	cp bench/requirements-upstream.txt $(WHEELHOUSE_UPSTREAM)/requirements-upstream.txt
	cd $(WHEELHOUSE_UPSTREAM) && tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
		-cf wheelhouse-upstream.tar.tmp *.whl requirements-upstream.txt && mv wheelhouse-upstream.tar.tmp wheelhouse-upstream.tar
	touch $@

test-adopt: deps venv keystone-venv bench-venvs wheelhouse wheelhouse-upstream ## issue 19: adopt/handback against upstream Glance 33: service tests, the role's tests, molecule/adopt (lab .120)
	cd service && $(PYTEST) -q --timeout=900 tests/adopt
	$(PYTEST) -q tests/test_glance_adopt.py
	molecule test -s adopt
