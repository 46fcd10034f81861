# Day-2 playbooks (upgrade, backup/restore, credential rotation, health) on one lab host, and
# the store switch (file -> rbd -> s3 under a client loop, one run killed midway) on a
# controller and a Ceph host. Not part of `make test`: they run under load for many minutes
# (docs/DAY2.md).
.PHONY: test-day2
test-day2: venv wheelhouse ## molecule day2 (lab .40) and backend-switch (lab .70-.71)
	molecule test -s day2
	molecule test -s backend-switch
