#!/usr/bin/env bash
# The benchmarks of docs/performance.md: the machine's limits, catch-up ingest, redemption on 4
# nodes, the offline audit, a PostgreSQL baseline of the same workload, and a node's memory.
# Every figure and its reference are measured in this one run. Prints one table and writes the
# figures as JSON to target/bench/results.json.
#   scripts/bench.sh [--entries N] [--lots N] [--members N] [--concurrency N] [--no-pg]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/setup.sh

ENTRIES=200000     # ingest: issues caught up from a peer's log
AUDIT_ENTRIES=200000
LOTS=1000000       # memory: lots held by the node's store
MEMBERS=10000      # redeem: members (one lot and one order each)
CONCURRENCY=64     # redeem: concurrent members at the tills
REDEEM_SECS=30     # redeem: longest timed phase
PG_SECS=10         # pg: seconds per pgbench run
PG=1
while [ $# -gt 0 ]; do
  case "$1" in
    --entries) ENTRIES=$2; shift 2 ;;
    --audit-entries) AUDIT_ENTRIES=$2; shift 2 ;;
    --lots) LOTS=$2; shift 2 ;;
    --members) MEMBERS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --no-pg) PG=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# PostgreSQL's server binaries (Debian puts them in /usr/lib/postgresql/<version>/bin).
pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
ensure_postgres() {
  if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/pgbench" ]; then
    say "installing postgresql"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql
  fi
  [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/pgbench" ]
}

ensure_system_packages
PG_REASON=""
if [ "$PG" = 1 ] && ! ensure_postgres; then PG_REASON="PostgreSQL could not be installed"; fi
[ "$PG" = 1 ] || PG_REASON="skipped (--no-pg)"

say "building coalition-node, coalition and coalition-bench (release)"
# Two builds: the benchmark uses the core's test fixtures, which must not end up in the node and
# CLI binaries it measures (one build would unify the feature into them).
cargo build --release --locked -p coalition-node -p coalition-cli
cargo build --release --locked -p coalition-bench

OUT=target/bench
PARTS=$OUT/parts
rm -rf "$PARTS"
mkdir -p "$PARTS"
BENCH=target/release/coalition-bench
export COALITION_BIN_DIR="$PWD/target/release"
SECONDS=0

# Runs one part; on failure records the last lines of its output as the reason.
part() {
  local name=$1; shift
  say "$name"
  if ! "$BENCH" "$name" "$@" --out "$PARTS/$name.json" 2> >(tee "$PARTS/$name.log" >&2); then
    sleep 0.2
    { grep -v '^\s*$' "$PARTS/$name.log" | tail -n 1 || echo failed; } >"$PARTS/$name.err"
    rm -f "$PARTS/$name.json"
  fi
}

# PostgreSQL on 127.0.0.1 in a temporary cluster under target/bench, stopped on any exit.
PGTMP=""
PG_CTL=""
AS_PG=()
stop_pg() {
  if [ -n "$PGTMP" ] && [ -f "$PGTMP/data/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_CTL" -D "$PGTMP/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  [ -n "$PGTMP" ] && rm -rf "$PGTMP"
  PGTMP=""
}
trap stop_pg EXIT
trap 'exit 130' INT TERM

start_pg() {
  local bindir; bindir=$(pg_bindir)
  PG_CTL="$bindir/pg_ctl"
  PGTMP=$(mktemp -d "$PWD/$OUT/pg.XXXXXX")
  if [ "$(id -u)" -eq 0 ]; then
    # The server refuses to run as root.
    id postgres >/dev/null 2>&1 || { PG_REASON="running as root and there is no postgres user"; return 1; }
    chown postgres: "$PGTMP"
    chmod 755 "$PGTMP"
    AS_PG=(runuser -u postgres --)
  fi
  PG_PORT=""
  for p in $(seq 55432 55532); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PG_PORT=$p; break; fi
  done
  [ -n "$PG_PORT" ] || { PG_REASON="no free port for PostgreSQL"; return 1; }
  "${AS_PG[@]}" "$bindir/initdb" -D "$PGTMP/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PARTS/pg-initdb.log" 2>&1 \
    || { PG_REASON="initdb failed (see $PARTS/pg-initdb.log)"; return 1; }
  "${AS_PG[@]}" "$PG_CTL" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
    -o "-k $PGTMP -h 127.0.0.1 -p $PG_PORT -c max_connections=200" start >/dev/null \
    || { PG_REASON="pg_ctl start failed: $(tail -n 1 "$PGTMP/server.log" 2>/dev/null)"; return 1; }
}

part limits
part ingest --entries "$ENTRIES"
part redeem --members "$MEMBERS" --concurrency "$CONCURRENCY" --max-secs "$REDEEM_SECS"
part audit --entries "$AUDIT_ENTRIES"
if [ -z "$PG_REASON" ]; then
  say "starting PostgreSQL"
  if start_pg; then
    part pg --bindir "$(pg_bindir)" --port "$PG_PORT" --members "$MEMBERS" --clients "$CONCURRENCY" --secs "$PG_SECS"
  fi
  stop_pg
fi
[ -z "$PG_REASON" ] || echo "$PG_REASON" >"$PARTS/pg.err"
part memory --lots "$LOTS"

say "results (target/bench/results.json)"
"$BENCH" report --parts "$PARTS" --json "$OUT/results.json" --secs "$SECONDS"
