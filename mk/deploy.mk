# `make lab`: the all-in-one lab with the image service deployed into it.
LAB_INVENTORY ?= inventory/lab
LAB_SECRETS := .lab/secrets
# The lab's all-in-one host (inventory/lab/hosts.yml).
LAB_AIO := 198.51.100.10

.PHONY: lab lab-deploy lab-clouds

lab: deps venv wheelhouse lab-hosts lab-deploy lab-clouds
	@echo
	@echo "Image service:  http://$(LAB_AIO):9292   (Keystone: http://$(LAB_AIO):5000/v3)"
	@echo "Credentials:    ./clouds.yaml, cloud glance-lab (admin; password in $(LAB_SECRETS)/keystone_admin)"
	@echo "Try:            .venv/bin/openstack --os-cloud glance-lab image list"
	@echo "                .venv/bin/openstack --os-cloud glance-lab image create --disk-format raw \\"
	@echo "                    --container-format bare --file /etc/hostname demo"
	@echo "Re-deploy:      .venv/bin/ansible-playbook -i $(LAB_INVENTORY) site.yml"

lab-deploy: venv wheelhouse
	ansible-playbook -i $(LAB_INVENTORY) site.yml

# The password was generated into .lab/secrets by the first deployment.
lab-clouds: lab-deploy
	@test -s $(LAB_SECRETS)/keystone_admin || { echo "$(LAB_SECRETS)/keystone_admin is missing: deploy first"; exit 1; }
	@umask 077 && printf '%s\n' \
	  '# Written by `make lab`: the lab'"'"'s administrator (openstack --os-cloud glance-lab ...).' \
	  'clouds:' \
	  '  glance-lab:' \
	  '    auth:' \
	  '      auth_url: http://$(LAB_AIO):5000/v3' \
	  '      username: admin' \
	  "      password: $$(cat $(LAB_SECRETS)/keystone_admin)" \
	  '      project_name: admin' \
	  '      user_domain_name: Default' \
	  '      project_domain_name: Default' \
	  '    region_name: RegionOne' \
	  '    interface: public' \
	  '    identity_api_version: 3' \
	  '    image_api_version: 2' >clouds.yaml
	@echo "wrote ./clouds.yaml (cloud glance-lab)"
