# helm 4 for the chart tests (test/chart) and the end-to-end installs, built once from its Go module (HELM_VERSION
# in scripts/controlplane/versions.env) into $(JOBCHAIN_CACHE_DIR)/helm/<version>/bin (scripts/helm/build.sh).
# Without Go the build leaves an UNAVAILABLE marker and the chart tests are reported as skipped with its reason.
TEST_PREREQS += helm

.PHONY: helm chart-lint
helm: ## build helm 4 for the chart tests (once, into the cache)
	@scripts/helm/build.sh >/dev/null

chart-lint: helm ## lint charts/jobchain (default and production values) with helm lint --strict
	@bin=$$(scripts/helm/build.sh --print); \
	if [ -z "$$bin" ]; then echo "chart-lint: helm is not available: $$(cat $(JOBCHAIN_CACHE_DIR)/helm/*/UNAVAILABLE 2>/dev/null)" >&2; exit 1; fi; \
	"$$bin/helm" lint --strict charts/jobchain && \
	"$$bin/helm" lint --strict charts/jobchain -f charts/jobchain/ci/production-values.yaml
