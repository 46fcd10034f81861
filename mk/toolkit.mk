# The deployment toolkit: its own tests, the molecule scenarios, and the wheelhouse the
# targets install from (they have no package index: see docs/DEPLOY.md).
WHEELHOUSE := $(CURDIR)/wheelhouse
# Zip timestamps from a fixed date: an unchanged source gives a byte-identical wheel, so
# re-running `make wheelhouse` and the playbooks copies and reinstalls nothing.
export SOURCE_DATE_EPOCH ?= 315532800
SERVICE_SOURCES := $(shell find service/glance_service -type f -name '*.py' -o -type f -path '*/migrations/*' 2>/dev/null) \
	service/pyproject.toml service/README.md

.PHONY: test-toolkit test-molecule wheelhouse lint-toolkit

# pip wheel of ./service constrained by its pins, plus Keystone's pins (the lab's identity
# host installs Keystone from the same directory). mysqlclient is built here from source against
# this host's libmariadb-dev (a cp311 linux_x86_64 wheel: build on Debian 12 for Debian 12
# hosts, which load libmariadb.so.3 from libmariadb3, installed by roles/glance). Both pin files travel in the wheelhouse:
# the targets install with them as constraints, so each virtualenv gets exactly its pins.
wheelhouse: $(WHEELHOUSE)/.built ## wheelhouse/wheelhouse.tar: the service, Keystone and their pinned wheels
$(WHEELHOUSE)/.built: $(SERVICE_SOURCES) service/requirements.txt requirements-keystone.txt | venv
	@test -f requirements-keystone.txt || { echo "requirements-keystone.txt is missing (Keystone's pins)"; exit 1; }
	@$(NEED_LIBMARIADB)
	mkdir -p $(WHEELHOUSE)
	# From a clean copy: setuptools reuses service/build/, where deleted modules would linger.
	rm -rf $(WHEELHOUSE)/.src && mkdir -p $(WHEELHOUSE)/.src
	tar -C service --exclude=build --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache -cf - . \
		| tar -C $(WHEELHOUSE)/.src -xf -
	$(VENV)/bin/pip wheel -q --no-deps --wheel-dir $(WHEELHOUSE) $(WHEELHOUSE)/.src
	$(VENV)/bin/pip wheel -q --wheel-dir $(WHEELHOUSE) -c service/requirements.txt $(WHEELHOUSE)/.src
	rm -rf $(WHEELHOUSE)/.src
	$(VENV)/bin/pip wheel -q --wheel-dir $(WHEELHOUSE) -r requirements-keystone.txt
	cp service/requirements.txt $(WHEELHOUSE)/constraints-glance.txt
	cp requirements-keystone.txt $(WHEELHOUSE)/constraints-keystone.txt
	# One deterministic archive: the roles copy it (skipped when unchanged) and unpack it.
	cd $(WHEELHOUSE) && tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
		-cf wheelhouse.tar.tmp *.whl constraints-*.txt && mv wheelhouse.tar.tmp wheelhouse.tar
	@ls $(WHEELHOUSE)/*.whl | wc -l | xargs echo "wheelhouse: wheels:"
	touch $@

lint-toolkit: venv ## yamllint and ansible-lint (production profile)
	yamllint -s .
	ansible-lint

test-toolkit: venv lint-toolkit ## lint-toolkit and the toolkit's own tests (tests/)
	$(PYTEST) -q tests

# Each scenario creates its hosts in the lab, deploys, checks idempotence, verifies, destroys.
test-molecule: venv wheelhouse ## molecule default (lab .20) and multinode (lab .30-.32)
	molecule test -s default
	molecule test -s multinode
