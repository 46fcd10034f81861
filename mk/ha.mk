# The highly available topology (docs/HA.md): three controllers behind HAProxy + keepalived on
# a Galera cluster, Ceph for images, TLS on both VIPs. `make ha-lab` deploys it and leaves it
# up; `make test-ha` is molecule's `ha` scenario (the same hosts: one or the other at a time):
# deploy, idempotence, then failures under a client load. Not part of `make test` (its time is
# in the README).
HA_INVENTORY ?= inventory/ha-lab

.PHONY: ha-lab ha-lab-destroy test-ha test-galera
ha-lab: deps venv wheelhouse ## create and deploy the HA lab (controllers .91-.93, storage .94, VIPs .100/.101)
	ansible-playbook -i $(HA_INVENTORY) playbooks/lab-create.yml
	ansible-playbook -i $(HA_INVENTORY) molecule/ha/converge.yml
	@echo
	@echo "Image service:  https://198.51.100.100:9292  (Keystone: https://198.51.100.100:5000/v3)"
	@echo "CA:             .lab/secrets/ha-lab/ca/ca.crt (--os-cacert)"

ha-lab-destroy: venv ## remove the HA lab's hosts
	ansible-playbook -i $(HA_INVENTORY) playbooks/lab-destroy.yml

test-ha: venv wheelhouse ## molecule ha (lab .91-.94): rolling ops, host and Galera failures under load
	molecule test -s ha

test-galera: venv ## molecule galera (lab .80-.82): a Galera node killed under writes, the whole cluster recovered
	molecule test -s galera
