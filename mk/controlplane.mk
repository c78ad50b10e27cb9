# A real Kubernetes control plane for the operator tests: kube-apiserver and etcd built once from their Go modules
# (versions in scripts/controlplane/versions.env) into $(JOBCHAIN_CACHE_DIR)/controlplane/<versions>/bin.
# Without Go the build leaves an UNAVAILABLE marker and the control-plane suites are reported as skipped.
# test/harness/controlplane.ts starts the servers; see docs/testing.md "Local control plane".
TEST_PREREQS += controlplane

.PHONY: controlplane cluster-up cluster-down
controlplane: ## build kube-apiserver + etcd for the tests (once, into the cache)
	@scripts/controlplane/build.sh >/dev/null

cluster-up: controlplane | $(NODE) ## start a local control plane in the background; prints its kubeconfig path last
	@node test/harness/cluster.ts up

cluster-down: | $(NODE) ## stop the control plane started by cluster-up and remove its files
	@node test/harness/cluster.ts down
