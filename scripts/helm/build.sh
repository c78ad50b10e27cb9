#!/usr/bin/env bash
# Builds helm (the chart tests' `helm lint` and `helm template`, and the end-to-end suite's installs) from its Go
# module, once per version.
#
#   scripts/helm/build.sh          # build if needed; prints the bin directory on the last line of stdout
#   scripts/helm/build.sh --print  # print the bin directory (or nothing) without building
#
# Everything lives under $JOBCHAIN_CACHE_DIR/helm/<version>/ (HELM_VERSION in scripts/controlplane/versions.env):
#   bin/helm        the binary (published atomically, then `.built` is written)
#   go/{path,cache} GOPATH (with GOMODCACHE = go/path/pkg/mod) and GOCACHE of this build
#   UNAVAILABLE     written instead of `.built` when Go is missing or the build failed: one line, the reason;
#                   the chart tests report themselves as skipped with it
#
# helm's main module has no replace directives, so `go install helm.sh/helm/v4/cmd/helm@<version>` builds it
# with exactly the dependency versions its go.mod pins.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../controlplane/versions.env
source "$HERE/../controlplane/versions.env"
HELM_VERSION="${JOBCHAIN_HELM_VERSION:-$HELM_VERSION}"
CACHE_DIR="${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}"
ROOT="$CACHE_DIR/helm/$HELM_VERSION"
BIN="$ROOT/bin"
PARALLEL="${JOBCHAIN_GO_PARALLEL:-2}"
# helm 4 declares `go 1.25` in its go.mod.
HELM_GO_MIN_VERSION=1.25

log() { echo "helm: $*" >&2; }

built() { [[ -f "$ROOT/.built" && -x "$BIN/helm" ]]; }

if [[ "${1:-}" == "--print" ]]; then
  built && echo "$BIN"
  exit 0
fi
if built; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$ROOT"
# One build at a time per version (parallel `make` runs, several checkouts sharing the cache).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT/.lock"
  if ! flock -n 9; then
    log "another build of helm $HELM_VERSION is running; waiting for it"
    flock 9
  fi
  if built; then echo "$BIN"; exit 0; fi
fi

unavailable() {
  echo "$1" >"$ROOT/UNAVAILABLE"
  log "$1"
  log "the chart tests will be reported as skipped; to run them, install Go >= $HELM_GO_MIN_VERSION"
  log "(https://go.dev/dl/) and run \`make helm\` again"
  exit 0
}

command -v go >/dev/null 2>&1 || unavailable "Go is not installed: helm $HELM_VERSION is built from source with Go >= $HELM_GO_MIN_VERSION"
GO_VERSION="$(go env GOVERSION)"  # e.g. go1.26.8
if ! printf '%s\n%s\n' "go$HELM_GO_MIN_VERSION" "$GO_VERSION" | sort -V -C; then
  unavailable "$GO_VERSION is too old: building helm $HELM_VERSION needs Go >= $HELM_GO_MIN_VERSION"
fi
rm -f "$ROOT/UNAVAILABLE"

export GOPATH="$ROOT/go/path" GOMODCACHE="$ROOT/go/path/pkg/mod" GOCACHE="$ROOT/go/cache"
export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -trimpath" CGO_ENABLED=0 GOWORK=off
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
# Modules only come through the proxy; keep the checksum database on (the default) for integrity.

START=$SECONDS
log "building helm $HELM_VERSION with $GO_VERSION (-p $PARALLEL) into $ROOT"
TMP_BIN="$ROOT/bin.tmp.$$"
rm -rf "$TMP_BIN" && mkdir -p "$TMP_BIN"
trap 'rm -rf "$TMP_BIN"' EXIT

# `helm version` reports what these set; without them a source build calls itself v4.x-dev.
LDFLAGS="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
if ! GOBIN="$TMP_BIN" go install -p "$PARALLEL" -ldflags="$LDFLAGS" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2; then
  unavailable "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION failed (see the build output above)"
fi

# --- publish ----------------------------------------------------------------------------------------------------
"$TMP_BIN/helm" version >&2
rm -rf "$BIN" && mv "$TMP_BIN" "$BIN"
printf 'helm=%s\ngo=%s\nbuilt=%s\n' "$HELM_VERSION" "$GO_VERSION" "$(date -u +%FT%TZ)" >"$ROOT/.built"
log "done in $((SECONDS - START)) s"
echo "$BIN"
