#!/usr/bin/env bash
# Provides a nats-server for the tests and benchmarks.
#
#   scripts/nats/install-nats-server.sh [VERSION]
#
# With Go available, builds the pinned release with `go install` into
#   $JOBCHAIN_CACHE_DIR/nats-server/<version>/bin/nats-server
# (GOPATH and GOCACHE live under $JOBCHAIN_CACHE_DIR/go as well), and does nothing when that binary is already
# there. Without Go, or when the build fails, installs Debian's `nats-server` package instead (older, 2.9.x, but
# with JetStream). Prints the path of the binary it provides on the last line of stdout.
set -euo pipefail

VERSION="${1:-${NATS_SERVER_VERSION:-2.12.15}}"
VERSION="${VERSION#v}"
CACHE_DIR="${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}"
DEST="$CACHE_DIR/nats-server/$VERSION"
BIN="$DEST/bin/nats-server"

log() { echo "nats-server: $*" >&2; }

if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

build_with_go() {
  command -v go >/dev/null 2>&1 || return 1
  log "building v$VERSION with $(go version | awk '{print $3}') into $DEST"
  local tmp="$DEST.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin"
  local start=$SECONDS
  if ! env GOPATH="$CACHE_DIR/go/path" GOCACHE="$CACHE_DIR/go/cache" GOMODCACHE="$CACHE_DIR/go/path/pkg/mod" \
      GOBIN="$tmp/bin" GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -trimpath" CGO_ENABLED=0 \
      go install "github.com/nats-io/nats-server/v2@v$VERSION" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  # Publish the finished build atomically, so an interrupted build is never mistaken for a cached one.
  mkdir -p "$DEST"
  mv "$tmp/bin" "$DEST/bin.new"
  rm -rf "$DEST/bin" && mv "$DEST/bin.new" "$DEST/bin"
  rm -rf "$tmp"
  log "built $("$BIN" --version) in $((SECONDS - start)) s"
}

# Debian's package puts the binary in /usr/sbin, which is not on every user's PATH.
system_nats_server() {
  command -v nats-server 2>/dev/null || { [[ -x /usr/sbin/nats-server ]] && echo /usr/sbin/nats-server; }
}

install_with_apt() {
  local found
  if found=$(system_nats_server); then
    log "using $found ($("$found" --version 2>&1))"
    echo "$found"
    return 0
  fi
  local sudo=""
  [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  command -v apt-get >/dev/null 2>&1 || { log "neither Go nor apt-get is available; install nats-server by hand"; return 1; }
  log "installing Debian's nats-server package"
  $sudo apt-get install -y nats-server >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y nats-server >&2; }
  system_nats_server
}

if build_with_go; then
  echo "$BIN"
else
  command -v go >/dev/null 2>&1 && log "go install failed; falling back to the Debian package"
  install_with_apt
fi
