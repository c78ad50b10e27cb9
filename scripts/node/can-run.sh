#!/usr/bin/env bash
# Exits 0 when this machine can run the local test node's containers (root, overlayfs, cgroups, Linux);
# otherwise prints the reason and exits 1. Used by mk/node.mk to decide what `make test` prepares.
[[ "$(uname -s)" == Linux ]] || { echo "not Linux"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "not root (containerd, kubelet, iptables and mounts need root)"; exit 1; }
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || { echo "no overlayfs"; exit 1; }
grep -qw overlay /proc/filesystems || { echo "no overlayfs"; exit 1; }
grep -qE ' /sys/fs/cgroup(/[a-z,_=]*)? cgroup2? ' /proc/mounts || { echo "no cgroups mounted under /sys/fs/cgroup"; exit 1; }
exit 0
