#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, checks formatting and lints,
# builds every binary and test once, runs every test, then a short chaos run.
#   scripts/test.sh                      # everything
#   scripts/test.sh -p coalition-core    # only these tests: arguments go to `cargo test` (no chaos run)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

ensure_system_packages
# The formatter and the linter are rustup components a minimal toolchain may lack.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    say "installing the $component component"
    rustup component add "$component"
  fi
done

say "checking formatting (cargo fmt --check)"
cargo fmt --all -- --check

say "checking that coalition-core stays pure (no tokio, rocksdb or libp2p)"
# Two steps, so that a failing `cargo tree` fails the script instead of passing the check.
core_deps=$(cargo tree --locked -p coalition-core -e normal --prefix none)
if grep -E '^(tokio|rocksdb|librocksdb-sys|libp2p)[ -]' <<<"$core_deps"; then
  echo "coalition-core depends on I/O crates (above); it must not" >&2
  exit 1
fi

announce_first_build
# One build of every test target; it builds the binaries the end-to-end tests drive
# (coalition-node, coalition, coalition-chaos) with the same features, so nothing is built twice.
say "building every binary and test"
with_progress debug cargo test --locked --workspace --no-run

# Lints need a check build of their own (clippy type-checks the workspace again, reusing the
# dependencies' build scripts, RocksDB's C++ included).
say "linting (cargo clippy -D warnings)"
with_progress debug cargo clippy --locked --workspace --all-targets -- -D warnings

say "running tests"
if [ $# -gt 0 ]; then
  cargo test --locked "$@"
else
  cargo test --locked --workspace
fi

# A short chaos run (kill -9, pauses, partitions, damaged write-ahead logs, full disks, double
# spends) with a fresh seed each time; the seed is printed.
if [ $# -eq 0 ]; then
  say "chaos run (60 s of workload under perturbation)"
  target/debug/coalition-chaos --duration 60
fi
