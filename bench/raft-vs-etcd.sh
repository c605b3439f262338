#!/usr/bin/env bash
# Raw replicated commit rate of drover and of etcd on this machine, side by side.
# Installs Debian's etcd-server if `etcd` is missing (needs root), builds the release binaries,
# and runs the raft scenario; extra arguments go to drover-loadgen (e.g. -duration-secs 20).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v etcd >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server
fi
ulimit -l "$(ulimit -H -l)" 2>/dev/null || true
cargo build --release --bins
exec target/release/drover-loadgen -submitters 64 -duration-secs 10 -payloads 256,4096 -etcd "$@" raft
