#!/usr/bin/env bash
# Provides redis-server for the BullMQ peer benchmark (bench/suites/30-bullmq.ts): uses the one on PATH, or
# installs Debian's `redis-server` package. The benchmark starts its own private instance on a free loopback port;
# a system service the package may start is not used.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
sudo=""
[[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
command -v apt-get >/dev/null 2>&1 || { echo "redis-server: not found and apt-get is unavailable; install Redis >= 6.2 by hand" >&2; exit 1; }
echo "redis-server: installing Debian's redis-server package" >&2
$sudo apt-get install -y redis-server >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y redis-server >&2; }
command -v redis-server
