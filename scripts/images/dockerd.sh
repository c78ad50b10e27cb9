# Sourced by scripts/images/build.sh: a Docker engine (Debian's docker.io) of its own, started for a build and
# stopped afterwards, that changes nothing on the host's network: no bridge, no iptables, no IP forwarding; build
# steps use the host's network namespace (`docker build --network host`) to reach the npm registry.
#   data root  $CACHE_DIR/images/docker (kept: layers and the imported base stay cached between builds)
#   exec root  /run/jobchain-docker (socket, pid file, its containerd's state; removed on stop)
# Needs CACHE_DIR and log().
DOCKER_DATA="$CACHE_DIR/images/docker"
DOCKER_EXEC=/run/jobchain-docker
DOCKER_SOCK="$DOCKER_EXEC/docker.sock"
DOCKER_CGROUP=jobchain-docker
# Debian's client (the same release as the engine).
DOCKER_CLI=/usr/bin/docker

# Paths the engine (and its containerd 1.6) uses whatever its roots are; those it creates are removed on stop. The
# list of created ones survives a crash of this script (the next start's stop removes them).
DOCKER_FIXED_PATHS=(/run/containerd /opt/containerd /run/docker /etc/docker/key.json /var/lib/docker)
DOCKER_CREATED="$CACHE_DIR/images/dockerd-created-paths"

docker_() { DOCKER_BUILDKIT=0 DOCKER_CLI_HINTS=false "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" "$@"; }

dockerd_stop() {
  local pid
  pid="$(cat "$DOCKER_EXEC/docker.pid" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Its containerd (a child in the exec root) and any shim left behind.
  local p
  for p in $(pgrep -f -- "$DOCKER_EXEC/" || true); do kill -KILL "$p" 2>/dev/null || true; done
  # Mounts under its roots, deepest first.
  local m
  for m in $(awk '{print $2}' /proc/mounts | grep -E "^($DOCKER_DATA|$DOCKER_EXEC)(/|$)" | sort -r || true); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$DOCKER_EXEC"
  if [[ -f "$DOCKER_CREATED" ]]; then
    local f
    while read -r f; do
      [[ -n "$f" ]] || continue
      for m in $(awk '{print $2}' /proc/mounts | grep -E "^$f(/|$)" | sort -r || true); do umount -l "$m" 2>/dev/null || true; done
      rm -rf "$f"
    done <"$DOCKER_CREATED"
    rm -f "$DOCKER_CREATED"
  fi
  local c
  for c in /sys/fs/cgroup/*/"$DOCKER_CGROUP" /sys/fs/cgroup/"$DOCKER_CGROUP"; do
    if [[ -d "$c" ]]; then find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}

dockerd_start() {
  command -v dockerd >/dev/null 2>&1 || { log "dockerd is missing: run \`make node-packages\` (Debian's docker.io)"; exit 1; }
  dockerd_stop
  mkdir -p "$DOCKER_DATA" "$DOCKER_EXEC"
  local f
  for f in "${DOCKER_FIXED_PATHS[@]}"; do [[ -e "$f" ]] || echo "$f"; done >"$DOCKER_CREATED"
  dockerd --data-root "$DOCKER_DATA" --exec-root "$DOCKER_EXEC" --pidfile "$DOCKER_EXEC/docker.pid" \
    -H "unix://$DOCKER_SOCK" --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --cgroup-parent="/$DOCKER_CGROUP" --storage-driver=overlay2 --log-level=warn --userland-proxy=false \
    >"$CACHE_DIR/images/dockerd.log" 2>&1 &
  for _ in $(seq 300); do
    docker_ version >/dev/null 2>&1 && return 0
    kill -0 $! 2>/dev/null || break
    sleep 0.2
  done
  log "dockerd did not start; its log:"; tail -20 "$CACHE_DIR/images/dockerd.log" >&2
  dockerd_stop
  exit 1
}
