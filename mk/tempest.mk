# Conformance: tempest's image API tests against the lab (playbooks/verify.yml, roles/tempest).
# `make test-tempest` deploys the lab (`make lab`), runs verify.yml against it, and prints the
# counts and the report directory; it fails when a test failed.
TEMPEST_INVENTORY ?= inventory/lab
TEMPEST_RESULTS := .tempest/results/latest

.PHONY: test-tempest verify
test-tempest: lab ## the lab, then tempest.api.image against it (verify.yml; not in CI)
	@$(MAKE) --no-print-directory verify TEMPEST_INVENTORY=$(TEMPEST_INVENTORY)

# verify.yml alone, against an already deployed TEMPEST_INVENTORY.
verify: venv ## tempest.api.image against TEMPEST_INVENTORY (an already deployed cloud)
	@start=$$(date +%s); stamp=$$(mktemp); rc=0; \
	ansible-playbook -i $(TEMPEST_INVENTORY) playbooks/verify.yml || rc=$$?; \
	if [ -f $(TEMPEST_RESULTS)/summary.json ] && [ $(TEMPEST_RESULTS)/summary.json -nt "$$stamp" ]; then \
	  python -c 'import json, sys; s = json.load(open(sys.argv[1])); \
	    print("tempest: %(passed)d passed, %(skipped)d skipped, %(failed)d failed, %(excluded)d excluded (report: %(results_dir)s)" % s)' \
	    $(TEMPEST_RESULTS)/summary.json; \
	fi; \
	rm -f "$$stamp"; echo "verify: $$(( $$(date +%s) - start )) s"; \
	exit $$rc
