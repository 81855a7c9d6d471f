//! The baseline: the same earn-and-redeem workload as SQL transactions against a local PostgreSQL
//! (started by scripts/bench.sh on 127.0.0.1 with trust authentication and default durability:
//! `fsync = on`, `synchronous_commit = on`), driven by `pgbench` with custom script files.
//!
//! Schema: one `member` row per member (balance, order sequence) and one `lot` row per issue.
//! * earn: `SERIALIZABLE` transaction that inserts a lot and credits the member row;
//! * redeem: `SERIALIZABLE` transaction that debits the member row (bumping its sequence, refusing
//!   an overdraft), takes the points from the member's oldest unexpired lot that covers them and
//!   records the redemption.
//!
//! Serialization failures are retried by pgbench (`--max-tries`), as an application would.

use crate::world::{secs, write_json};
use crate::Args;
use anyhow::{bail, ensure, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const SCHEMA: &str = r#"
DROP TABLE IF EXISTS redemption, lot, member;
CREATE TABLE member (
    id bigint PRIMARY KEY,
    next_seq bigint NOT NULL DEFAULT 0,
    balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE lot (
    id bigserial PRIMARY KEY,
    member bigint NOT NULL REFERENCES member (id),
    issuer integer NOT NULL,
    points bigint NOT NULL,
    remaining bigint NOT NULL CHECK (remaining >= 0),
    expires_at timestamptz NOT NULL
);
CREATE INDEX lot_member ON lot (member, expires_at);
CREATE TABLE redemption (
    id bigserial PRIMARY KEY,
    member bigint NOT NULL,
    redeemer integer NOT NULL,
    lot bigint NOT NULL,
    points bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO member (id, next_seq, balance)
    SELECT g, 0, 1000000 FROM generate_series(1, :members) g;
INSERT INTO lot (member, issuer, points, remaining, expires_at)
    SELECT g, g % 4, 1000000, 1000000, now() + interval '30 days' FROM generate_series(1, :members) g;
VACUUM ANALYZE;
"#;

const EARN: &str = r#"\set m random(1, :members)
\set p random(0, 3)
BEGIN ISOLATION LEVEL SERIALIZABLE;
UPDATE member SET balance = balance + 100 WHERE id = :m;
INSERT INTO lot (member, issuer, points, remaining, expires_at) VALUES (:m, :p, 100, 100, now() + interval '30 days');
COMMIT;
"#;

const REDEEM: &str = r#"\set m random(1, :members)
\set p random(0, 3)
BEGIN ISOLATION LEVEL SERIALIZABLE;
UPDATE member SET next_seq = next_seq + 1, balance = balance - 10 WHERE id = :m AND balance >= 10;
WITH l AS (SELECT id FROM lot WHERE member = :m AND remaining >= 10 AND expires_at > now() ORDER BY expires_at, id LIMIT 1),
     u AS (UPDATE lot SET remaining = remaining - 10 FROM l WHERE lot.id = l.id RETURNING lot.id)
INSERT INTO redemption (member, redeemer, lot, points) SELECT :m, :p, id, 10 FROM u;
COMMIT;
"#;

/// One pgbench run's figures.
struct Run {
    tps: f64,
    transactions: u64,
    failed: u64,
    p50_ms: f64,
    p99_ms: f64,
    secs: f64,
}

fn check(what: &str, o: &Output) -> Result<()> {
    ensure!(
        o.status.success(),
        "{what} failed ({}): {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}

/// The number after `key` on the first line of `text` that contains it.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().ok()
}

/// Latencies (µs) of committed transactions from pgbench's per-transaction logs in `dir`.
fn logged_latencies(dir: &Path) -> Result<Vec<u64>> {
    let mut lat = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if !e.file_name().to_string_lossy().starts_with("pgbench_log") {
            continue;
        }
        let text = std::fs::read_to_string(e.path())?;
        // client_id transaction_no time script_no time_epoch time_us [...]; time is µs, or
        // "failed"/"skipped".
        lat.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
        std::fs::remove_file(e.path()).ok();
    }
    lat.sort_unstable();
    Ok(lat)
}

fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    (sorted[i] as f64 / 10.0).round() / 100.0
}

struct Pg {
    bindir: PathBuf,
    host: String,
    port: u16,
    user: String,
    db: String,
    members: u64,
    work: tempfile::TempDir,
}

impl Pg {
    fn conn(&self, c: &mut Command) {
        c.arg("-h")
            .arg(&self.host)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.user);
    }

    fn psql(&self, sql: &str) -> Result<()> {
        let file = self.work.path().join("schema.sql");
        std::fs::write(&file, sql)?;
        let mut c = Command::new(self.bindir.join("psql"));
        self.conn(&mut c);
        c.args(["-q", "-X", "-v", "ON_ERROR_STOP=1", "-v"])
            .arg(format!("members={}", self.members))
            .arg("-d")
            .arg(&self.db)
            .arg("-f")
            .arg(&file);
        let o = c.output().context("running psql")?;
        check("psql", &o)
    }

    fn pgbench(&self, name: &str, script: &str, clients: usize, duration: u64) -> Result<Run> {
        let file = self.work.path().join(format!("{name}.sql"));
        std::fs::write(&file, script)?;
        let logs = self.work.path().join(name);
        std::fs::create_dir_all(&logs)?;
        let threads = clients.clamp(1, 2);
        let mut c = Command::new(self.bindir.join("pgbench"));
        self.conn(&mut c);
        c.current_dir(&logs)
            .args(["-n", "-c"])
            .arg(clients.to_string())
            .arg("-j")
            .arg(threads.to_string())
            .arg("-T")
            .arg(duration.to_string())
            .arg("--max-tries=100")
            .arg("--failures-detailed")
            .arg("-l")
            .arg("-D")
            .arg(format!("members={}", self.members))
            .arg("-f")
            .arg(&file)
            .arg(&self.db);
        let started = Instant::now();
        let o = c.output().context("running pgbench")?;
        let elapsed = started.elapsed();
        check("pgbench", &o)?;
        let text = String::from_utf8_lossy(&o.stdout);
        let tps = number_after(&text, "tps =")
            .with_context(|| format!("no tps in pgbench output:\n{text}"))?;
        let transactions =
            number_after(&text, "number of transactions actually processed:").unwrap_or(0.0) as u64;
        let failed = number_after(&text, "number of failed transactions:").unwrap_or(0.0) as u64;
        let lat = logged_latencies(&logs)?;
        let run = Run {
            tps,
            transactions,
            failed,
            p50_ms: quantile_ms(&lat, 0.50),
            p99_ms: quantile_ms(&lat, 0.99),
            secs: secs(elapsed),
        };
        eprintln!(
            "  pgbench {name}: {:.0} tps, {} transactions ({} failed), p50 {} ms, p99 {} ms",
            run.tps, run.transactions, run.failed, run.p50_ms, run.p99_ms
        );
        Ok(run)
    }
}

fn run_json(r: &Run, clients: usize) -> serde_json::Value {
    json!({
        "ops_per_sec": r.tps.round(),
        "transactions": r.transactions,
        "failed": r.failed,
        "clients": clients,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "secs": r.secs,
    })
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let out = args.path("out")?;
    let bindir = args.path("bindir")?;
    let port: u16 = args.num("port", 5432u16)?;
    let members: u64 = args.num("members", 10_000u64)?;
    let duration: u64 = args.num("secs", 10u64)?;
    let redeem_clients: usize = args.num("clients", 64usize)?;
    let earn_clients: usize = args.num("earn-clients", 16usize)?;
    if !bindir.join("pgbench").exists() {
        bail!("{} has no pgbench", bindir.display());
    }
    let pg = Pg {
        bindir,
        host: args.str("host").unwrap_or("127.0.0.1").to_string(),
        port,
        user: args.str("user").unwrap_or("postgres").to_string(),
        db: args.str("db").unwrap_or("postgres").to_string(),
        members,
        work: tempfile::tempdir()?,
    };
    let t = Instant::now();
    pg.psql(SCHEMA)?;
    let load = t.elapsed();
    eprintln!(
        "  loaded {members} members with one lot each in {:.1} s",
        load.as_secs_f64()
    );
    let earn = pg.pgbench("earn", EARN, earn_clients, duration)?;
    let redeem = pg.pgbench("redeem", REDEEM, redeem_clients, duration)?;
    let version = Command::new(pg.bindir.join("pgbench"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    write_json(
        &out,
        &json!({
            "method": "local PostgreSQL (Debian package, default settings: fsync and synchronous_commit on) on 127.0.0.1 over TCP; pgbench with custom scripts, SERIALIZABLE transactions retried on serialization failure (--max-tries=100); earn = insert a lot row + credit the member row; redeem = debit the member row (sequence bump, overdraft check) + take the points from the oldest unexpired lot row + insert a redemption row",
            "version": version,
            "members": members,
            "load_secs": secs(load),
            "earn": run_json(&earn, earn_clients),
            "redeem": run_json(&redeem, redeem_clients),
            "ops_per_sec": redeem.tps.round(),
        }),
    )
}
