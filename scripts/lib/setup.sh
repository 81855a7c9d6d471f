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

# One debug build of every binary; the end-to-end tests drive these very files.
build_binaries() {
  say "building coalition and coalition-node"
  cargo build --locked --workspace --bins
}
