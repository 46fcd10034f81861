# Day-2 playbooks (upgrade, backup/restore, credential rotation, health) on one lab host.
# Not part of `make test`: it rotates credentials and restores under load (docs/DAY2.md).
.PHONY: test-day2
test-day2: venv wheelhouse
	molecule test -s day2
