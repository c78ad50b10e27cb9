# The end-to-end suite (test/e2e/, vitest.e2e.config.ts) on a cluster with real pods: the local node here
# (`make e2e`, part of `make test`), or kind (`make e2e-kind`, mk/kind.mk). It installs charts/jobchain with helm
# and the locally built images. Where no node can run here it is reported as skipped, with the reason.
#   e2e-images   the images the suite loads besides the node's: the example pipeline's runner image (built from
#                examples/pipeline/Dockerfile as docs/jobs.md says), the suite's own runner image
#                (test/e2e/image), and second tags of it and of the project image for `helm upgrade`
.PHONY: e2e e2e-images
E2E_IMAGE_ARCHIVES := $(addprefix $(IMAGE_ARCHIVES)/,pipeline.tar e2e-jobs-1.tar e2e-jobs-2.tar jobchain-next.tar)

$(IMAGE_ARCHIVES)/pipeline.tar: $(IMAGE_ARCHIVES)/jobchain.tar $(shell find examples/pipeline -type f)
	@scripts/images/build.sh context examples/pipeline jobchain.local/pipeline:e2e pipeline >/dev/null
$(IMAGE_ARCHIVES)/e2e-jobs-1.tar: $(IMAGE_ARCHIVES)/jobchain.tar $(shell find test/e2e/image -type f)
	@scripts/images/build.sh context test/e2e/image jobchain.local/e2e-jobs:1 e2e-jobs-1 >/dev/null
$(IMAGE_ARCHIVES)/e2e-jobs-2.tar: $(IMAGE_ARCHIVES)/e2e-jobs-1.tar
	@scripts/images/build.sh tag jobchain.local/e2e-jobs:1 jobchain.local/e2e-jobs:2 e2e-jobs-2 >/dev/null
$(IMAGE_ARCHIVES)/jobchain-next.tar: $(IMAGE_ARCHIVES)/jobchain.tar
	@scripts/images/build.sh tag jobchain.local/jobchain:dev jobchain.local/jobchain:e2e-next jobchain-next >/dev/null

ifeq ($(NODE_CAN_RUN),yes)
e2e-images: node-prereqs
	@$(MAKE) --no-print-directory $(E2E_IMAGE_ARCHIVES) || echo "e2e: the suite's images could not be built (see above)" >&2
else
e2e-images:
	@echo "e2e: no local node on this machine ($(NODE_WHY_NOT)); the end-to-end suite will be skipped" >&2
endif

e2e: build helm e2e-images ## end to end on the local node: helm install, JobTasks, 1,000 tasks, faults, upgrade, uninstall
	$(VITEST) run --config vitest.e2e.config.ts
BENCH_PREREQS += helm e2e-images
