# shellcheck shell=bash
# Sourced by the scripts that build third-party binaries from Go modules into the cache (controlplane, node, helm,
# kind): what they all do before and around `go build`. Each script defines `log`, `built` (whether its outputs are
# complete) and `unavailable REASON` (write its UNAVAILABLE marker, say what to do, exit 0).

# reuse_or_print ARG BIN: `--print` prints BIN when built (or nothing) and exits; an existing build prints BIN and
# exits; otherwise returns to build.
reuse_or_print() {
  if [[ "$1" == "--print" ]]; then
    if built; then echo "$2"; fi
    exit 0
  fi
  if built; then echo "$2"; exit 0; fi
}

# build_lock FILE WHAT BIN: one build at a time per cache entry (parallel `make` runs, several checkouts sharing the
# cache); when the build waited for finished it, prints BIN and exits.
build_lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  if ! flock -n 9; then
    log "another build of $2 is running; waiting for it"
    flock 9
  fi
  if built; then echo "$3"; exit 0; fi
}

# require_go MIN BUILT_FROM NEEDS: sets GO_VERSION (e.g. go1.26.8), or calls `unavailable` when Go is missing
# ("Go is not installed: BUILT_FROM built from source with Go >= MIN") or older than MIN ("building NEEDS needs ...").
require_go() {
  command -v go >/dev/null 2>&1 || unavailable "Go is not installed: $2 built from source with Go >= $1"
  GO_VERSION="$(go env GOVERSION)"
  if ! printf '%s\n%s\n' "go$1" "$GO_VERSION" | sort -V -C; then
    unavailable "$GO_VERSION is too old: building $3 needs Go >= $1"
  fi
}

# go_env DIR [GOFLAGS]: GOPATH, GOMODCACHE and GOCACHE under DIR, no toolchain download, no cgo, no workspace.
# Modules only come through the proxy; the checksum database stays on (the default) for integrity.
go_env() {
  export GOPATH="$1/path" GOMODCACHE="$1/path/pkg/mod" GOCACHE="$1/cache"
  export GOTOOLCHAIN=local GOFLAGS="${2:--mod=mod -buildvcs=false}" CGO_ENABLED=0 GOWORK=off
  export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
}
