# The lab's hosts (roles/lab, lab/): booting systemd-nspawn hosts on the bridge glancebr0.
# `make lab-hosts` creates the hosts of inventory/lab's group `lab`; `make lab-destroy` removes
# them (and the bridge and apt cache once no lab host remains; LAB_DESTROY_ALL=true removes
# every lab host on this machine, molecule's too) and the credentials `make lab` wrote.
LAB_INVENTORY ?= inventory/lab
LAB_DESTROY_ALL ?= false

.PHONY: lab-hosts lab-destroy
lab-hosts: deps venv ## create and boot the lab's hosts (inventory group lab), nothing deployed
	ansible-playbook -i $(LAB_INVENTORY) playbooks/lab-create.yml

lab-destroy: venv ## remove the lab's hosts, ./clouds.yaml and ./admin-openrc (LAB_DESTROY_ALL=true: every lab host)
	ansible-playbook -i $(LAB_INVENTORY) playbooks/lab-destroy.yml -e lab_destroy_all=$(LAB_DESTROY_ALL)
	rm -f clouds.yaml admin-openrc
