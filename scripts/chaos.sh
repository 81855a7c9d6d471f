#!/usr/bin/env bash
# The chaos run: 4 real nodes on 127.0.0.1 under a random workload (issues, cross-partner
# redemptions, deliberate double-spend pairs) while nodes are killed with -9 and restarted, paused
# with SIGSTOP/SIGCONT, isolated from their peers and healed (the node's admin API partition
# switch: no traffic but loopback's is touched), restarted on a damaged write-ahead log, or left
# without disk space (each node's data directory is on its own tmpfs, so this needs root); then it
# checks convergence and the ledger invariants and exits non-zero on any violation. The seed is
# printed; pass it back to replay the same choices.
#   scripts/chaos.sh [--duration S] [--seed N]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

ensure_system_packages
build_chaos
exec target/debug/coalition-chaos "$@"
