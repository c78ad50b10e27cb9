#!/usr/bin/env bash
# The Docker engine kind runs on (Debian's docker.io), started with its own roots and stopped afterwards, leaving the
# host's network as it found it: no default bridge, no iptables rules, no IP forwarding. kind's node containers sit
# on one user-defined bridge network (`kind`, $KIND_SUBNET on the bridge $KIND_BRIDGE, created here before kind
# needs it); the host reaches them on that bridge, and a published port (the API server's) is served by Docker's
# userland proxy on 127.0.0.1. Inside a node, Kubernetes has the node container's own network namespace.
#
#   scripts/kind/engine.sh run     # takes the image-build lock, starts the engine, prints `ready <socket>` and keeps
#                                  # it until stdin closes or SIGTERM/SIGINT; then removes kind's containers, its
#                                  # network and bridge, stops the engine and puts everything back
#   scripts/kind/engine.sh stop    # the same cleanup after a crash (takes the lock)
#   source scripts/kind/engine.sh  # kind_engine_start / kind_engine_stop (the caller holds the lock)
#
#   data root  $CACHE_DIR/kind/docker (kept: the node image and loaded images stay between runs)
#   exec root  /run/jobchain-kind-docker (socket, pid file, its containerd's state; removed on stop)
# The engine shares fixed paths with the image builds' engine (scripts/images/dockerd.sh: /run/containerd,
# /var/lib/docker, ...), so both take the lock $CACHE_DIR/images/.lock and never run at the same time.
set -euo pipefail

KIND_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${CACHE_DIR:-${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}}"
type log >/dev/null 2>&1 || log() { echo "kind: $*" >&2; }
# dockerd_stop and the list of fixed paths come from the image builds' engine; the roots are this engine's.
# shellcheck source=../images/dockerd.sh
source "$KIND_HERE/../images/dockerd.sh"
DOCKER_DATA="$CACHE_DIR/kind/docker"
DOCKER_EXEC=/run/jobchain-kind-docker
DOCKER_SOCK="$DOCKER_EXEC/docker.sock"
DOCKER_CGROUP=jobchain-kind-docker
DOCKER_CREATED="$CACHE_DIR/kind/dockerd-created-paths"
DOCKER_LOG="$CACHE_DIR/kind/dockerd.log"
KIND_NETWORK=kind
KIND_BRIDGE=jobchain-kind0
# Outside 10.214.0.0/16 (the local node's) and the host's own networks.
KIND_SUBNET="${JOBCHAIN_KIND_SUBNET:-172.31.97.0/24}"
IMAGES_LOCK="$CACHE_DIR/images/.lock"

kind_engine_stop() {
  if "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1; then
    local ids
    ids="$(docker_ ps -aq --filter label=io.x-k8s.kind.cluster || true)"
    [[ -z "$ids" ]] || docker_ rm -f -v $ids >/dev/null 2>&1 || true
    docker_ network rm "$KIND_NETWORK" >/dev/null 2>&1 || true
    docker_ volume prune -f >/dev/null 2>&1 || true
  fi
  # Userland proxies of published ports outlive a killed engine: those serving our bridge's subnet go too.
  local p prefix="${KIND_SUBNET%.*}."
  for p in $(pgrep -x docker-proxy || true); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "-container-ip $prefix" && kill -KILL "$p" 2>/dev/null || true
  done
  dockerd_stop
  ip link show "$KIND_BRIDGE" >/dev/null 2>&1 && ip link delete "$KIND_BRIDGE" || true
  # Veths of the bridge whose container side died with the engine.
  local l
  for l in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ "$(basename "$(readlink -f "/sys/class/net/$l/master" 2>/dev/null)")" == "$KIND_BRIDGE" ]] && ip link delete "$l" || true
  done
}

kind_engine_start() {
  command -v dockerd >/dev/null 2>&1 || { log "dockerd is missing: run \`make node-packages\` (Debian's docker.io)"; exit 1; }
  kind_engine_stop
  mkdir -p "$DOCKER_DATA" "$DOCKER_EXEC"
  local f
  for f in "${DOCKER_FIXED_PATHS[@]}"; do [[ -e "$f" ]] || echo "$f"; done >"$DOCKER_CREATED"
  dockerd --data-root "$DOCKER_DATA" --exec-root "$DOCKER_EXEC" --pidfile "$DOCKER_EXEC/docker.pid" \
    -H "unix://$DOCKER_SOCK" --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --cgroup-parent="/$DOCKER_CGROUP" --storage-driver=overlay2 --log-level=warn --userland-proxy=true \
    --add-runtime "jobchain-runc=$KIND_HERE/runc" --default-runtime jobchain-runc \
    >"$DOCKER_LOG" 2>&1 &
  local ok=
  for _ in $(seq 300); do
    docker_ version >/dev/null 2>&1 && { ok=1; break; }
    kill -0 $! 2>/dev/null || break
    sleep 0.2
  done
  if [[ -z "$ok" ]]; then
    log "dockerd did not start; its log:"; tail -20 "$DOCKER_LOG" >&2
    kind_engine_stop
    exit 1
  fi
  docker_ network create --driver bridge --subnet "$KIND_SUBNET" -o "com.docker.network.bridge.name=$KIND_BRIDGE" \
    -o com.docker.network.bridge.enable_ip_masquerade=false -o com.docker.network.driver.mtu=1400 "$KIND_NETWORK" >/dev/null
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  [[ $EUID -eq 0 ]] || { log "the kind engine needs root"; exit 1; }
  mkdir -p "$CACHE_DIR/kind" "$CACHE_DIR/images"
  exec 8>"$IMAGES_LOCK"
  flock -n 8 || { log "an image build is using the machine's Docker paths; waiting for it"; flock 8; }
  case "${1:-}" in
    stop) kind_engine_stop ;;
    run)
      trap 'kind_engine_stop' EXIT
      trap 'exit 0' TERM INT HUP
      kind_engine_start
      echo "ready $DOCKER_SOCK"
      # Until the caller closes our stdin (it exited, however it died) or signals us.
      while read -r _; do :; done
      ;;
    *) log "usage: scripts/kind/engine.sh run|stop"; exit 2 ;;
  esac
fi
