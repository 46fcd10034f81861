# `make lab`: the all-in-one lab with the image service deployed into it.
LAB_INVENTORY ?= inventory/lab
LAB_SECRETS := .lab/secrets
# The lab's all-in-one host (inventory/lab/hosts.yml).
LAB_AIO := 198.51.100.10

.PHONY: lab lab-deploy lab-clouds

lab: deps venv wheelhouse lab-hosts lab-deploy lab-clouds ## create the all-in-one lab (198.51.100.10), deploy, write the credentials
	@echo
	@echo "Image service:  http://$(LAB_AIO):9292   (Keystone: http://$(LAB_AIO):5000/v3)"
	@echo "Credentials:    ./clouds.yaml, cloud glance-lab, and ./admin-openrc (admin; password in $(LAB_SECRETS)/keystone_admin)"
	@echo "Try:            .venv/bin/openstack --os-cloud glance-lab image list"
	@echo "                source admin-openrc && .venv/bin/glance image-list"
	@echo "                .venv/bin/openstack --os-cloud glance-lab image create --disk-format raw \\"
	@echo "                    --container-format bare --file /etc/hostname demo"
	@echo "Re-deploy:      .venv/bin/ansible-playbook -i $(LAB_INVENTORY) site.yml"

lab-deploy: venv wheelhouse ## run site.yml against the lab again (LAB_INVENTORY)
	ansible-playbook -i $(LAB_INVENTORY) site.yml

# The password was generated into .lab/secrets by the first deployment.
lab-clouds: lab-deploy ## write ./clouds.yaml and ./admin-openrc (0600) for the lab's administrator
	@bash scripts/lab-credentials.sh $(LAB_SECRETS)/keystone_admin $(LAB_AIO) $(CURDIR)
