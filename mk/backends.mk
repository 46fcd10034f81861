# Ceph as the image stores (rbd, and s3 through the RADOS Gateway).
# `make test-backends`: the service against a private one-node Ceph 16 run on this machine
# (tests/integration/backends, ~2 min), then the lab scenario molecule/backends-ceph (a storage
# host deployed by roles/ceph; create, converge, idempotence, verify with a reboot, destroy).
.PHONY: test-backends test-backends-service test-backends-molecule

test-backends: test-backends-service test-backends-molecule

test-backends-service: deps venv
	$(VENV)/bin/pip install -q boto3 -c service/requirements.txt
	cd service && python -m pytest -q --timeout=900 tests/integration/backends

test-backends-molecule: deps venv
	molecule test -s backends-ceph
