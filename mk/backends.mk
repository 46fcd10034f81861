# Ceph and Swift as the image stores (rbd, s3 through the RADOS Gateway, swift).
# `make test-backends`: the service against a private one-node Ceph 16 and a private Swift 2.30
# behind a real Keystone, run on this machine (tests/integration/backends, ~2 min for Ceph and
# ~5 min for Swift), then the lab scenarios molecule/backends-ceph and molecule/backends (below;
# about 3 and 12 min). Not part of `make test` (CI's budget): the README says so.
.PHONY: test-backends test-backends-service test-backends-molecule

test-backends: test-backends-service test-backends-molecule ## the service on a private Ceph and Swift, then the lab scenarios backends-ceph and backends

# keystone-venv: the Swift tests' proxy authenticates the glance user with a real Keystone
test-backends-service: deps venv keystone-venv ## the service against a private Ceph 16 and Swift 2.30 behind Keystone
	$(VENV)/bin/pip install -q boto3 python-swiftclient -c service/requirements.txt
	cd service && $(PYTEST) -q --timeout=900 tests/integration/backends

# Two lab scenarios: backends-ceph (the Ceph role alone, ~3 min, with a reboot of the storage
# host: the one check of Ceph coming back) and backends (kept separate, not folded in: the whole
# image service on rbd, s3, swift, file and http stores at once, every store checked in its
# backend with its own tool, copy-image, throughput; needs the wheelhouse).
test-backends-molecule: deps venv wheelhouse ## molecule backends-ceph and backends (lab .50, .60-.62)
	molecule test -s backends-ceph
	molecule test -s backends
