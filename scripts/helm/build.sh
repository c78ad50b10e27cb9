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
# shellcheck source=../controlplane/go-build.sh
source "$HERE/../controlplane/go-build.sh"
HELM_VERSION="${JOBCHAIN_HELM_VERSION:-$HELM_VERSION}"
CACHE_DIR="${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}"
ROOT="$CACHE_DIR/helm/$HELM_VERSION"
BIN="$ROOT/bin"
PARALLEL="${JOBCHAIN_GO_PARALLEL:-2}"
# helm 4 declares `go 1.25` in its go.mod.
HELM_GO_MIN_VERSION=1.25

log() { echo "helm: $*" >&2; }

built() { [[ -f "$ROOT/.built" && -x "$BIN/helm" ]]; }

reuse_or_print "${1:-}" "$BIN"
build_lock "$ROOT/.lock" "helm $HELM_VERSION" "$BIN"

unavailable() {
  echo "$1" >"$ROOT/UNAVAILABLE"
  log "$1"
  log "the chart tests will be reported as skipped; to run them, install Go >= $HELM_GO_MIN_VERSION"
  log "(https://go.dev/dl/) and run \`make helm\` again"
  exit 0
}

require_go "$HELM_GO_MIN_VERSION" "helm $HELM_VERSION is" "helm $HELM_VERSION"
rm -f "$ROOT/UNAVAILABLE"
go_env "$ROOT/go" "-buildvcs=false -trimpath"

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
