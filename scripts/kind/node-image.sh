#!/usr/bin/env bash
# Makes a kind node image on this machine, with no registry, from the binaries built here:
#
#   scripts/kind/node-image.sh          # build if needed; prints the image's name on the last line of stdout
#   scripts/kind/node-image.sh --name   # print the name without building
#
# What `kind create cluster` needs of a node image, and where each part comes from:
#   a systemd-booted Debian      debootstrap bookworm (minbase + systemd, Debian's containerd, runc, CNI plugins,
#                                iptables/nftables, conntrack, ...); cached as $CACHE_DIR/kind/rootfs/<key>.tar
#   kubeadm, kubelet, kubectl    scripts/kind/build.sh, scripts/node/build.sh (Kubernetes $KUBERNETES_VERSION)
#   crictl                       scripts/node/build.sh
#   control-plane images         FROM-scratch images of the static binaries, named as kubeadm names them
#                                (registry.k8s.io/kube-apiserver:$KUBERNETES_VERSION, ...); etcd and CoreDNS carry
#                                their own versions (registry.k8s.io/etcd:$ETCD_VERSION,
#                                registry.k8s.io/coredns/coredns:$COREDNS_VERSION), which the cluster's kubeadm
#                                configuration names (test/harness/kind.ts); kube-proxy runs on a small Debian root
#                                (it calls iptables); pause is scripts/images/pause. All preloaded into the node's
#                                containerd (namespace k8s.io) by a containerd of this build, on its own socket
#   /kind/version, /kind/manifests/default-{cni,storage}.yaml, the entrypoint, units, containerd/CNI configuration
#                                scripts/kind/node/ (pod networking: a ptp CNI configuration baked in, for one node)
#
# The image (jobchain.local/kind-node:$KUBERNETES_VERSION-<key>) lives in the kind engine's data root
# ($CACHE_DIR/kind/docker, scripts/kind/engine.sh); the build runs that engine while it holds the image-build lock.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CP="$REPO/scripts/controlplane"
# shellcheck source=../controlplane/versions.env
source "$CP/versions.env"
KUBERNETES_VERSION="${JOBCHAIN_KUBERNETES_VERSION:-$KUBERNETES_VERSION}"
CACHE_DIR="${JOBCHAIN_CACHE_DIR:-$HOME/.cache/jobchain}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${JOBCHAIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,conntrack,ethtool,socat,iproute2,kmod,mount,util-linux,procps,ca-certificates,libseccomp2
PROXY_PACKAGES=iptables,nftables,conntrack,kmod
# The image's key: what goes into it (the files under node/, this script, the package lists, the versions).
KEY="$({ cat "$0"; find "$HERE/node" -type f | sort | xargs cat
  echo "$NODE_PACKAGES $PROXY_PACKAGES $KUBERNETES_VERSION $ETCD_VERSION $COREDNS_VERSION $CRICTL_VERSION"; } | sha256sum | cut -c1-12)"
NODE_IMAGE="jobchain.local/kind-node:$KUBERNETES_VERSION-$KEY"

log() { echo "kind-node: $*" >&2; }

if [[ "${1:-}" == "--name" ]]; then echo "$NODE_IMAGE"; exit 0; fi
[[ $EUID -eq 0 ]] || { log "building the node image needs root (debootstrap, dockerd, containerd)"; exit 1; }

for c in containerd ctr debootstrap dockerd; do
  command -v "$c" >/dev/null || { log "$c is missing: run \`make node-packages\`"; exit 1; }
done

mkdir -p "$CACHE_DIR/kind/rootfs" "$CACHE_DIR/images"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/jobchain-kind-node.XXXXXX")"
CTRD_PID=
ENGINE_UP=
cleanup() {
  [[ -z "$CTRD_PID" ]] || { kill "$CTRD_PID" 2>/dev/null; wait "$CTRD_PID" 2>/dev/null || true; }
  [[ -z "$ENGINE_UP" ]] || kind_engine_stop
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- root filesystems (cached by their package lists) -------------------------------------------------------------
rootfs() { # NAME PACKAGES → path of the cached tar
  local key tar
  key="$DEBIAN_SUITE-$(echo "$2" | sha256sum | cut -c1-12)"
  tar="$CACHE_DIR/kind/rootfs/$1-$key.tar"
  if [[ ! -f "$tar" ]]; then
    local t0=$SECONDS root="$WORK/rootfs-$1"
    log "debootstrap $DEBIAN_SUITE (minbase + $2) for $1"
    debootstrap --variant=minbase --include="$2" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" >"$CACHE_DIR/kind/debootstrap-$1.log" 2>&1 \
      || { tail -20 "$CACHE_DIR/kind/debootstrap-$1.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
      "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
    tar --numeric-owner -C "$root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
    log "$1 root filesystem built in $((SECONDS - t0)) s"
  fi
  echo "$tar"
}

# shellcheck source=engine.sh
source "$HERE/engine.sh"
exec 8>"$CACHE_DIR/images/.lock"

have_image() { "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" image inspect "$NODE_IMAGE" >/dev/null 2>&1; }
# A running engine (a cluster is up, so the lock is held) that has the image: nothing to do.
if have_image; then echo "$NODE_IMAGE"; exit 0; fi

# The root filesystems first (minutes; no engine, no lock needed), in parallel.
rootfs node "$NODE_PACKAGES" >"$WORK/node-rootfs" &
rootfs_node=$!
rootfs kube-proxy "$PROXY_PACKAGES" >"$WORK/proxy-rootfs"
wait "$rootfs_node"
NODE_ROOTFS="$(cat "$WORK/node-rootfs")"
PROXY_ROOTFS="$(cat "$WORK/proxy-rootfs")"

# --- the binaries -------------------------------------------------------------------------------------------------
KIND_BIN="$("$HERE/build.sh" | tail -1)"
BITS="$CACHE_DIR/kind/node-k8s-${KUBERNETES_VERSION}_coredns-${COREDNS_VERSION}/bin"
NODE_BIN="$("$REPO/scripts/node/build.sh" | tail -1)"
CP_BIN="$("$CP/build.sh" | tail -1)"
for b in "$KIND_BIN/kind" "$BITS/kubeadm" "$BITS/coredns" "$NODE_BIN/kubelet" "$NODE_BIN/kubectl" "$NODE_BIN/crictl" \
  "$NODE_BIN/kube-proxy" "$NODE_BIN/kube-controller-manager" "$NODE_BIN/kube-scheduler" "$NODE_BIN/pause" \
  "$CP_BIN/kube-apiserver" "$CP_BIN/etcd"; do
  [[ -x "$b" ]] || { log "$b is missing (Go unavailable? see the UNAVAILABLE markers under $CACHE_DIR)"; exit 1; }
done

flock -n 8 || { log "an image build or kind cluster is using the machine's Docker paths; waiting for it"; flock 8; }
START=$SECONDS
kind_engine_start
ENGINE_UP=1
if have_image; then echo "$NODE_IMAGE"; exit 0; fi

# --- control-plane images -----------------------------------------------------------------------------------------
mapfile -t KUBEADM_IMAGES < <("$BITS/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null)
image_named() { local i; for i in "${KUBEADM_IMAGES[@]}"; do [[ "$i" == *"/$1:"* ]] && { echo "$i"; return; }; done
  log "kubeadm names no $1 image"; exit 1; }
PAUSE_IMAGE="$(image_named pause)"
ETCD_IMAGE="registry.k8s.io/etcd:$ETCD_VERSION"
COREDNS_IMAGE="registry.k8s.io/coredns/coredns:$COREDNS_VERSION"

IMAGES_DIR="$WORK/images"
mkdir -p "$IMAGES_DIR"
static_image() { # IMAGE BINARY [ENTRYPOINT]
  local ctx="$WORK/ctx-$(basename "$2")" name
  name="$(basename "$2")"
  mkdir -p "$ctx" && cp "$2" "$ctx/$name"
  if [[ -n "${3:-}" ]]; then
    printf 'FROM scratch\nCOPY %s /%s\nENTRYPOINT ["/%s"]\n' "$name" "$name" "$name" >"$ctx/Dockerfile"
  else
    printf 'FROM scratch\nENV PATH=/usr/local/bin:/usr/bin:/bin\nCOPY %s /usr/local/bin/%s\n' "$name" "$name" >"$ctx/Dockerfile"
  fi
  docker_ build -q -t "$1" "$ctx" >/dev/null
  docker_ save "$1" -o "$IMAGES_DIR/$name.tar"
}
static_image "$(image_named kube-apiserver)" "$CP_BIN/kube-apiserver"
static_image "$(image_named kube-controller-manager)" "$NODE_BIN/kube-controller-manager"
static_image "$(image_named kube-scheduler)" "$NODE_BIN/kube-scheduler"
static_image "$ETCD_IMAGE" "$CP_BIN/etcd"
static_image "$COREDNS_IMAGE" "$BITS/coredns" entrypoint
static_image "$PAUSE_IMAGE" "$NODE_BIN/pause" entrypoint
# kube-proxy calls iptables, iptables-restore and conntrack: a small Debian root beneath it.
docker_ import "$PROXY_ROOTFS" jobchain.local/kind-kube-proxy-base:"$(basename "$PROXY_ROOTFS" .tar)" >/dev/null
mkdir -p "$WORK/ctx-kube-proxy" && cp "$NODE_BIN/kube-proxy" "$WORK/ctx-kube-proxy/"
printf 'FROM jobchain.local/kind-kube-proxy-base:%s\nCOPY kube-proxy /usr/local/bin/kube-proxy\n' "$(basename "$PROXY_ROOTFS" .tar)" \
  >"$WORK/ctx-kube-proxy/Dockerfile"
docker_ build -q -t "$(image_named kube-proxy)" "$WORK/ctx-kube-proxy" >/dev/null
docker_ save "$(image_named kube-proxy)" -o "$IMAGES_DIR/kube-proxy.tar"

# --- the node's containerd content: imported by a containerd of this build (no CRI, no containers) ---------------
CTX="$WORK/ctx-node"
mkdir -p "$CTX/containerd" "$WORK/ctrd-state"
cat >"$WORK/ctrd.toml" <<TOML
version = 2
root = "$CTX/containerd"
state = "$WORK/ctrd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$WORK/ctrd.sock"
[ttrpc]
  address = "$WORK/ctrd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
TOML
containerd --config "$WORK/ctrd.toml" >"$WORK/ctrd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do ctr -a "$WORK/ctrd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
for t in "$IMAGES_DIR"/*.tar; do
  ctr -a "$WORK/ctrd.sock" -n k8s.io images import --no-unpack "$t" >/dev/null
done
ctr -a "$WORK/ctrd.sock" -n k8s.io images list -q | grep -v '^sha256:' | sed 's/^/  /' >&2
kill "$CTRD_PID"; wait "$CTRD_PID" 2>/dev/null || true; CTRD_PID=

# --- the node image -------------------------------------------------------------------------------------------------
ROOTFS_IMAGE="jobchain.local/kind-node-rootfs:$(basename "$NODE_ROOTFS" .tar)"
docker_ image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1 || docker_ import "$NODE_ROOTFS" "$ROOTFS_IMAGE" >/dev/null
cp -a "$HERE/node/." "$CTX/files"
sed -i "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|" "$CTX/files/etc/containerd/config.toml"
echo -n "$KUBERNETES_VERSION" >"$CTX/files/kind/version"
printf '%s\n' "${KUBEADM_IMAGES[@]/*etcd*/$ETCD_IMAGE}" | sed "s|.*coredns.*|$COREDNS_IMAGE|" >"$CTX/files/kind/images"
cp "$BITS/kubeadm" "$NODE_BIN/kubelet" "$NODE_BIN/kubectl" "$CTX/"
cp "$NODE_BIN/crictl" "$CTX/crictl"
cat >"$CTX/Dockerfile" <<DOCKERFILE
FROM $ROOTFS_IMAGE
COPY kubeadm kubelet kubectl /usr/bin/
COPY crictl /usr/local/bin/crictl
COPY files/ /
COPY containerd/ /var/lib/containerd/
RUN systemctl enable containerd kubelet >/dev/null 2>&1 \
 && systemctl mask getty@tty1.service systemd-udevd.service systemd-udev-trigger.service systemd-networkd.service \
      systemd-resolved.service systemd-timesyncd.service console-getty.service >/dev/null 2>&1 \
 && rm -f /etc/machine-id && touch /etc/machine-id
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
DOCKERFILE
docker_ build -q --network none -t "$NODE_IMAGE" "$CTX" >/dev/null
# Node images of earlier keys and the build's intermediate images are not kept.
docker_ images --format '{{.Repository}}:{{.Tag}}' jobchain.local/kind-node | grep -vxF "$NODE_IMAGE" | xargs -r "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" rmi >/dev/null 2>&1 || true
docker_ image prune -f >/dev/null
log "$NODE_IMAGE: $(docker_ image inspect -f '{{.Size}}' "$NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'), built in $((SECONDS - START)) s"
echo "$NODE_IMAGE"
