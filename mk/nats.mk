# nats-server for the NATS integration tests and benchmarks, redis-server for the BullMQ peer benchmark.
# The nats-server release is built once with `go install` into $(JOBCHAIN_CACHE_DIR)/nats-server/<version>/bin
# (Debian's nats-server package when Go is missing); test/harness/nats.ts finds it there.
NATS_SERVER_VERSION ?= 2.12.15
NATS_SERVER_BIN := $(JOBCHAIN_CACHE_DIR)/nats-server/$(NATS_SERVER_VERSION)/bin/nats-server

TEST_PREREQS += nats-server
BENCH_PREREQS += nats-server redis-server

.PHONY: nats-server redis-server demo-nats
nats-server: ## provide nats-server (pinned release built once into the cache, or Debian's package)
	@if [ -x "$(NATS_SERVER_BIN)" ]; then :; else NATS_SERVER_VERSION=$(NATS_SERVER_VERSION) scripts/nats/install-nats-server.sh >/dev/null; fi

redis-server: ## provide redis-server for the BullMQ peer benchmark (Debian's package)
	@command -v redis-server >/dev/null 2>&1 || scripts/nats/install-redis-server.sh >/dev/null

demo-nats: build nats-server ## run the example pipeline across two runner processes over a local nats-server
	@NATS_SERVER=$$(if [ -x "$(NATS_SERVER_BIN)" ]; then echo "$(NATS_SERVER_BIN)"; else command -v nats-server; fi) scripts/nats/demo.sh --format pretty
