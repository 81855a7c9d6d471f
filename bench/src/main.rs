//! `coalition-bench`: the measurements behind `scripts/bench.sh` and docs/performance.md.
//!
//! Each subcommand measures one thing and writes its figures as one JSON object to `--out`;
//! `report` gathers them into the table and `target/bench/results.json`.
//!
//! ```text
//! coalition-bench limits       --out F                      ed25519, blake3, RocksDB synced writes
//! coalition-bench ingest       --entries N --out F          catch-up through the node's writer
//! coalition-bench memory       --lots N --out F             peak RSS of a store holding N lots
//! coalition-bench audit        --entries N --out F          build an export, time `coalition audit verify`
//! coalition-bench redeem       --members M --out F          4 real nodes, concurrent redemptions
//! coalition-bench pg           --bindir D --port P --out F  the same workload as SQL (pgbench)
//! coalition-bench report       --parts DIR --json F         the table
//! ```

mod audit;
mod ingest;
mod limits;
mod pg;
mod redeem;
mod report;
mod world;

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `--key value` pairs after the subcommand.
pub struct Args {
    values: BTreeMap<String, String>,
}

impl Args {
    fn parse(rest: &[String]) -> Result<Args> {
        let mut values = BTreeMap::new();
        let mut it = rest.iter();
        while let Some(k) = it.next() {
            let Some(key) = k.strip_prefix("--") else {
                bail!("unexpected argument {k:?}")
            };
            let v = it
                .next()
                .with_context(|| format!("--{key} needs a value"))?;
            values.insert(key.to_string(), v.clone());
        }
        Ok(Args { values })
    }

    /// A string option.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A required path option.
    pub fn path(&self, key: &str) -> Result<PathBuf> {
        self.str(key)
            .map(PathBuf::from)
            .with_context(|| format!("--{key} is required"))
    }

    /// A number option with a default.
    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.str(key) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|e| anyhow::anyhow!("--{key} {s:?}: {e}")),
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!(
            "usage: coalition-bench <limits|ingest|memory|audit|redeem|pg|report> [--key value]..."
        );
        std::process::exit(2);
    };
    let result = Args::parse(rest).and_then(|args| match cmd.as_str() {
        "limits" => limits::run(&args),
        "ingest" => ingest::run(&args),
        "memory" => ingest::memory(&args),
        "audit" => audit::run(&args),
        "redeem" => redeem::run(&args),
        "pg" => pg::run(&args),
        "report" => report::run(&args),
        other => bail!("unknown subcommand {other:?}"),
    });
    if let Err(e) = result {
        eprintln!("coalition-bench {cmd}: {e:#}");
        std::process::exit(1);
    }
}
