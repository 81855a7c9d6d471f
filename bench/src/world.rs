//! A coalition built in memory with real keys: genesis, partner keys, members, chained log entries.

use anyhow::{Context, Result};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::record::{
    reference_hash, Entry, Epoch, Issue, MemberId, PartnerId, Points, Record, SignedEntry,
    Timestamp,
};
use coalition_core::test_util::test_genesis;
use std::path::Path;
use std::time::{Duration, Instant};

/// Genesis time of the in-memory coalitions.
pub(crate) const START: Timestamp = 1_700_000_000;
/// Epoch length of the in-memory coalitions: long enough that every generated entry is in epoch 0.
pub(crate) const EPOCH_SECS: u64 = 10_000_000;
/// Entries per batch: the node fetches log ranges of 512 (node/src/sync.rs) and the auditor
/// verifies 512 signatures at once.
pub(crate) const BATCH: usize = 512;

/// A coalition of `n` partners whose keys we hold.
pub(crate) struct Net {
    /// The genesis.
    pub genesis: Genesis,
    /// Partner keys, in genesis order.
    pub partners: Vec<Keypair>,
}

impl Net {
    /// `n` partners with fixed keys, one epoch of [`EPOCH_SECS`] from [`START`].
    pub(crate) fn new(n: usize) -> Net {
        let (genesis, partners) = test_genesis(n);
        let genesis = Genesis {
            coalition: "bench".into(),
            genesis_time: START,
            epoch_secs: EPOCH_SECS,
            ..genesis
        };
        genesis
            .validate()
            .unwrap_or_else(|e| panic!("bench genesis: {e}"));
        Net { genesis, partners }
    }

    /// Partner `i`'s id.
    pub(crate) fn pid(&self, i: usize) -> PartnerId {
        PartnerId(self.partners[i].public())
    }
}

/// Partner `i`'s key (fixed, so runs are comparable).
pub(crate) fn partner_key(i: u8) -> Keypair {
    coalition_core::test_util::partner_key(usize::from(i))
}

/// Member `i`'s key (fixed).
pub(crate) fn member_key(i: u32) -> Keypair {
    let mut seed = [0x6du8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    Keypair::from_secret_bytes(&seed)
}

/// The ids of members `0..count`.
pub(crate) fn member_ids(count: u32) -> Vec<MemberId> {
    (0..count)
        .map(|i| MemberId(member_key(i).public()))
        .collect()
}

/// Appends to one partner's log: keeps `seq`, `prev` and the epoch.
pub(crate) struct LogBuilder {
    /// The author's index in the genesis.
    pub partner: usize,
    /// Next position.
    pub seq: u64,
    /// Id of the last entry.
    pub prev: Hash,
    /// Open epoch.
    pub epoch: Epoch,
}

impl LogBuilder {
    /// An empty log of partner `partner`.
    pub(crate) fn new(partner: usize) -> LogBuilder {
        LogBuilder {
            partner,
            seq: 0,
            prev: Hash::ZERO,
            epoch: 0,
        }
    }

    /// Signs the next entry.
    pub(crate) fn next(&mut self, net: &Net, time: Timestamp, record: Record) -> SignedEntry {
        let closes = matches!(record, Record::EpochClose(_));
        let entry = Entry {
            partner: net.pid(self.partner),
            seq: self.seq,
            prev: self.prev,
            epoch: self.epoch,
            time,
            record,
        }
        .sign(&net.partners[self.partner]);
        self.seq += 1;
        self.prev = entry.id();
        if closes {
            self.epoch += 1;
        }
        entry
    }

    /// Signs the next entry: an issue of `points` to `member`, receipt number `n`.
    pub(crate) fn issue(
        &mut self,
        net: &Net,
        member: MemberId,
        points: Points,
        time: Timestamp,
        n: u64,
    ) -> SignedEntry {
        let issue = Issue {
            issuer: net.pid(self.partner),
            member,
            points,
            expires_at: time + 10 * EPOCH_SECS,
            reference: reference_hash(&format!("bench receipt {}/{n}", self.partner)),
            time,
        };
        self.next(net, time, Record::Issue(issue))
    }
}

/// `(VmHWM, VmRSS)` of this process in bytes, from /proc/self/status.
pub(crate) fn rss_of(pid: Option<u32>) -> Option<(u64, u64)> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Writes `value` as pretty JSON to `path`.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Calls `f` (which does `per_call` operations) repeatedly for about `window`, and returns
/// operations per second; stops at the first error.
pub(crate) fn rate(
    window: Duration,
    per_call: u64,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    let started = Instant::now();
    let mut ops = 0u64;
    while started.elapsed() < window {
        f()?;
        ops += per_call;
    }
    Ok(ops as f64 / started.elapsed().as_secs_f64())
}

/// The median of `runs` calls of `measure` (robust against a neighbour's burst on a shared machine).
pub(crate) fn median_of(runs: usize, mut measure: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut v: Vec<f64> = (0..runs.max(1)).map(|_| measure()).collect::<Result<_>>()?;
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[v.len() / 2])
}

/// Seconds as f64, rounded to milliseconds.
pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The load average (1 minute) now, for the record.
pub(crate) fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
