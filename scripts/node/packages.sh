#!/usr/bin/env bash
# Installs the Debian packages the local test node and the image builds use, when they are missing:
#   containerd, runc             the container runtime (containerd 1.6 with CRI v1; runs the pods)
#   containernetworking-plugins  the CNI bridge, host-local and loopback plugins (/usr/lib/cni)
#   iptables, nftables           kube-proxy and the kubelet program iptables (nft backend); `nft` deletes tables
#   conntrack                    kube-proxy clears stale UDP conntrack entries with it
#   debootstrap                  the base image's Debian root filesystem
#   docker.io                    the Docker engine that builds the images (started by scripts/images/build.sh only)
# Debian's builds rather than newer ones from their Go modules: they are what the distribution maintains and
# patches, they install in seconds, and they ran the kubelet's containers here. Services are not started by the
# installation (a policy-rc.d that refuses them is in place while it runs).
# Not root, or no apt-get: prints why and exits 0 (the node tests are then reported as skipped).
set -euo pipefail
PACKAGES=(containerd runc containernetworking-plugins iptables nftables conntrack debootstrap docker.io)
need=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
((${#need[@]})) || exit 0
if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "node: not installing ${need[*]} (needs root and apt-get); the node tests will be skipped" >&2
  exit 0
fi
echo "node: installing ${need[*]}" >&2
policy=/usr/sbin/policy-rc.d
added_policy=
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
fi
trap '[[ -z "$added_policy" ]] || rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
