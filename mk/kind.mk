# kind for the end-to-end suite: `make kind` builds kind ($KIND_VERSION in scripts/controlplane/versions.env), kubeadm
# and the node image's CoreDNS from their Go modules into $(JOBCHAIN_CACHE_DIR)/kind (scripts/kind/build.sh).
# `make e2e-kind` makes the kind node image on this machine (scripts/kind/node-image.sh: Debian + systemd, Debian's
# containerd, the locally built Kubernetes binaries and control-plane images), starts a one-node cluster from it
# (test/harness/kind.ts) and runs the end-to-end suite against it. With JOBCHAIN_KIND_NODE_IMAGE (e.g.
# kindest/node:v1.35.0, where Docker and a registry exist) the pulled image and the machine's Docker engine are used
# instead. Not part of `make test`. See docs/testing.md "kind".
.PHONY: kind kind-node-image e2e-kind

kind: ## build kind, kubeadm and the kind node's CoreDNS (once, into the cache)
	@scripts/kind/build.sh | tail -1

ifeq ($(JOBCHAIN_KIND_NODE_IMAGE),)
KIND_NODE_PREREQS := node-packages node-components controlplane images
kind-node-image: kind $(KIND_NODE_PREREQS) ## make the kind node image on this machine (root; minutes the first time)
	@scripts/kind/node-image.sh | tail -1
else
KIND_NODE_PREREQS := images
kind-node-image:
	@echo "kind: using the node image $(JOBCHAIN_KIND_NODE_IMAGE)"
endif

# The kind smoke test, then the end-to-end suite of test/e2e on a kind cluster.
e2e-kind: build helm kind kind-node-image e2e-images | $(NODE) ## run the end-to-end suite on a kind cluster (local node image unless JOBCHAIN_KIND_NODE_IMAGE)
	JOBCHAIN_E2E_CLUSTER=kind $(VITEST) run test/kind
	JOBCHAIN_E2E_CLUSTER=kind $(VITEST) run --config vitest.e2e.config.ts
