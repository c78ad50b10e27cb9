# A real single-node Kubernetes for the node tests and `make cluster-up` (test/harness/node.ts):
#   node-packages    Debian's containerd, runc, CNI plugins, iptables/nftables, conntrack, debootstrap, docker.io
#   node-components  kubelet, kube-proxy, kube-controller-manager, kube-scheduler, kubectl, CoreDNS, crictl, pause,
#                    built once into $(JOBCHAIN_CACHE_DIR)/node/<versions>/bin (scripts/node/build.sh)
#   images           the image archives the node imports: base, pause, nats-server, the project (scripts/images/)
#   image            the project image only, also loaded into a running node
#   runner-image     a user's runner image (DIR, IMAGE), also loaded into a running node
# Where containers cannot run (not root, no overlayfs or cgroups) nothing is prepared and the node suites are
# reported as skipped with the reason. See docs/testing.md "Local node".

TEST_PREREQS += node-prereqs
BENCH_PREREQS += node-prereqs

.PHONY: node-packages node-components images image runner-image node-prereqs
node-packages: ## install Debian's containerd, runc, CNI plugins, iptables, debootstrap, docker.io (root)
	@scripts/node/packages.sh

node-components: controlplane ## build the node's kubelet, kube-proxy, controller manager, scheduler, CoreDNS, crictl
	@scripts/node/build.sh | tail -1

# Each archive is rebuilt when what goes into it changed (the Docker engine's layer cache keeps a rebuild short).
PROJECT_IMAGE_INPUTS := Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json \
	$(SOURCES) $(shell find bin examples -type f 2>/dev/null)

$(IMAGE_ARCHIVES)/base.tar: scripts/images/build.sh | node-packages $(NODE)
	@scripts/images/build.sh base >/dev/null
$(IMAGE_ARCHIVES)/pause.tar: scripts/images/pause/main.go | node-packages node-components
	@scripts/images/build.sh pause >/dev/null
$(IMAGE_ARCHIVES)/nats-server.tar: | node-packages nats-server
	@scripts/images/build.sh nats >/dev/null
$(IMAGE_ARCHIVES)/jobchain.tar: $(PROJECT_IMAGE_INPUTS) $(IMAGE_ARCHIVES)/base.tar | node-packages
	@scripts/images/build.sh project >/dev/null

images: $(addprefix $(IMAGE_ARCHIVES)/,base.tar pause.tar nats-server.tar jobchain.tar) ## build the node's images (base, pause, nats-server, project)

image: node-packages node-components | $(NODE) ## build the project image (Dockerfile) and load it into a running node
	@scripts/images/build.sh project >/dev/null
	@node test/harness/cluster.ts load-image jobchain

# A runner image of the user's own for the local cluster: DIR's Dockerfile (FROM the project image, as
# examples/pipeline/Dockerfile) built as IMAGE with no registry, then loaded into the running node; a JobGraph with
# spec.image IMAGE runs it (imagePullPolicy IfNotPresent).
RUNNER_ARCHIVE = runner-$(subst :,_,$(subst /,_,$(IMAGE)))
runner-image: node-packages node-components | $(NODE) ## build DIR's Dockerfile as IMAGE and load it into a running node (make runner-image DIR=examples/pipeline IMAGE=jobchain.local/pipeline:1)
	@[ -n "$(DIR)" ] && [ -n "$(IMAGE)" ] || { echo "usage: make runner-image DIR=<directory with a Dockerfile> IMAGE=<name:tag>" >&2; exit 2; }
	@scripts/images/build.sh context "$(DIR)" "$(IMAGE)" "$(RUNNER_ARCHIVE)" >/dev/null
	@node test/harness/cluster.ts load-image "$(RUNNER_ARCHIVE)"

ifeq ($(NODE_CAN_RUN),yes)
# An image build that fails (e.g. the npm registry unreachable from the build) does not stop `make test`: the node
# suites use the archives there are, or are skipped with the missing one named.
node-prereqs: node-packages node-components nats-server
	@$(MAKE) --no-print-directory images || echo "node: the images could not be built (see above)" >&2
else
node-prereqs:
	@echo "node: no local node on this machine ($(NODE_WHY_NOT)); the node suites will be skipped" >&2
endif

# cluster-up starts the real node where it can run (test/harness/cluster.ts decides and says which).
cluster-up: node-prereqs helm
