#!/usr/bin/env bash
# Fuzz every decoder that takes outside bytes, each for a bounded time (libFuzzer via cargo-fuzz).
#   scripts/fuzz.sh                  # every target, 60 s each
#   scripts/fuzz.sh --seconds 300    # longer
#   scripts/fuzz.sh wire wallet      # some targets only
# Inputs that once crashed a target are kept in fuzz/regressions/<target>/ and replayed first, every
# run. A new crash stops the run with the input's path and the command that reproduces it; copy the
# input into fuzz/regressions/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
say "building fuzz targets"
cargo +nightly fuzz build -O

for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "regressions/$t"
  say "fuzzing $t for ${seconds} s"
  if ! cargo +nightly fuzz run -O "$t" "corpus/$t" "regressions/$t" -- \
      -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>"corpus/$t.log"; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "corpus/$t.log" >&2 || true
    echo "fuzz target $t crashed; reproduce with: (cd fuzz && cargo +nightly fuzz run -O $t <input>)" >&2
    exit 1
  fi
  grep -E '^Done|stat::number_of_executed_units' "corpus/$t.log" | head -2 >&2 || true
done
say "no crashes in ${#targets[@]} targets"
