#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, builds once, runs every test.
#   scripts/test.sh            # everything
#   scripts/test.sh -p coalition-core   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

ensure_system_packages
build_binaries

say "checking that coalition-core stays pure (no tokio, rocksdb or libp2p)"
if cargo tree --locked -p coalition-core -e normal --prefix none | grep -E '^(tokio|rocksdb|librocksdb-sys|libp2p)[ -]'; then
  echo "coalition-core depends on I/O crates (above); it must not" >&2
  exit 1
fi

say "running tests"
cargo test --locked --workspace "$@"

# A short chaos run (kill -9, pauses, double spends) with a fresh seed each time; the seed is printed.
if [ $# -eq 0 ]; then
  say "chaos run (60 s of workload under perturbation)"
  target/debug/coalition-chaos --duration 60
fi
