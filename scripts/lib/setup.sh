# Shared by scripts/*.sh: install what a fresh Debian/Ubuntu machine lacks, then build once.
# Sourced, not run.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# RocksDB is built from C++ source by the rocksdb crate and needs libclang (bindgen) and a C++ compiler.
ensure_system_packages() {
  local missing=()
  # libclang-cpp alone (present on some images) is not what bindgen loads.
  ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so' \
    || ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* >/dev/null 2>&1 \
    || missing+=(libclang-dev)
  command -v c++ >/dev/null 2>&1 || missing+=(g++)
  command -v make >/dev/null 2>&1 || missing+=(make)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust stable (https://rustup.rs) and re-run" >&2
    exit 1
  fi
}

# How far the C++ build of RocksDB is, as "N of M files", or nothing before it starts or after it
# is done. The rocksdb crate compiles its sources silently for most of a first build, so without
# this a newcomer watches one "Compiling librocksdb-sys" line for a quarter of an hour.
rocksdb_progress() {
  local profile=$1 sources total done
  sources=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/librocksdb-sys-*/rocksdb_lib_sources.txt 2>/dev/null | tail -n 1)
  [ -n "$sources" ] || return 0
  total=$(wc -l < "$sources")
  done=$(find target/"$profile"/build/librocksdb-sys-*/out -name '*.o' 2>/dev/null | wc -l)
  if [ "$done" -gt 0 ] && [ "$done" -lt "$total" ]; then
    echo "RocksDB's C++: $done of $total files compiled"
  fi
}

# Runs a cargo build command, saying every minute how long it has taken and what it is doing.
# Usage: with_progress PROFILE cargo build ...
with_progress() {
  local profile=$1; shift
  local start=$SECONDS
  (
    while sleep 60; do
      local what
      what=$(rocksdb_progress "$profile")
      say "still building: $(( (SECONDS - start) / 60 )) min so far${what:+; $what}"
    done
  ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  if [ $rc -eq 0 ]; then
    say "built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
  fi
  return $rc
}

# A first build compiles every dependency, RocksDB's C++ above all; say so before it starts.
announce_first_build() {
  if [ ! -d target/debug/build ] || ! ls target/debug/build/librocksdb-sys-*/out/*.a >/dev/null 2>&1; then
    say "first build on this machine: about 25 minutes on 2 cores, most of it RocksDB's C++ (progress every minute)"
  fi
}

# The two binaries a local coalition needs (scripts/demo.sh): nothing else is compiled.
build_node_and_cli() {
  announce_first_build
  say "building coalition and coalition-node"
  with_progress debug cargo build --locked -p coalition-node -p coalition-cli --bins
}

# What scripts/chaos.sh runs: the two binaries and the chaos runner.
build_chaos() {
  announce_first_build
  say "building coalition, coalition-node and coalition-chaos"
  with_progress debug cargo build --locked -p coalition-node -p coalition-cli -p coalition-tests --bins
}
