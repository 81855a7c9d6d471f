//! The chaos run: 4 real nodes under a random workload of issues, cross-partner redemptions and
//! deliberate double-spend pairs, while one node at a time is
//! - killed (`kill -9`) and restarted;
//! - paused (SIGSTOP/SIGCONT);
//! - cut off from its peers and healed (the admin API's partition switch, so no traffic but
//!   loopback's is touched);
//! - killed and restarted on a damaged write-ahead log: its tail cut (the node must start), or a
//!   checksum flipped in the middle (the node must refuse to start; it is then restored from an
//!   older copy, as docs/operating.md says);
//! - left without disk space: each node's data directory is on a tmpfs of its own, which is filled
//!   (the node must exit with its storage-failed status), then freed and the node restarted, as a
//!   supervisor would.
//!
//! At the end it waits for convergence and checks the invariants: identical logs, checkpoints and
//! balances on every node; no partner recorded as equivocating; points conserved and never
//! negative; at most one certificate per (member, seq); every acknowledged operation present
//! everywhere; the ledger passes the offline audit. The one exception to "acknowledged": a
//! damaged write-ahead log is a disk that lost synced writes, and what no partner had copied yet
//! is lost with it; those are counted apart, and only those. Prints a summary; exits non-zero on
//! any violation.
//!
//! `coalition-chaos [--duration SECS] [--seed N]` (see scripts/chaos.sh). Needs root for the
//! tmpfs mounts.

use anyhow::{bail, Context, Result};
use coalition_client::order::{order_token, select_lots};
use coalition_client::types::{EntryRef, HistoryKind, IssueRequest};
use coalition_client::Client;
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::hash::Hash;
use coalition_core::record::{MemberId, PartnerId, RedeemOrder};
use coalition_node::service::EXIT_STORAGE_FAILED;
use coalition_tests::disk::{self, SmallDisk, WAL_BLOCK};
use coalition_tests::{check_output, copy_dir, signal, wait_for, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 4;
const EPOCH_SECS: u64 = 5;
const MEMBERS: usize = 10;
/// Each node's own disk: a few times what a run writes, so a fill is a real fill.
const DISK_SIZE: &str = "256m";

/// A small deterministic generator (xorshift64*), so a seed replays the same choices.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An operation a node acknowledged: the lot or order, and where the node said it appended it.
struct Ack {
    member: MemberId,
    id: Hash,
    entry: EntryRef,
    /// How many times the node's disk had been damaged when the request was sent.
    damages_before: usize,
}

#[derive(Default)]
struct Acks {
    /// Lots whose issue a node acknowledged.
    issues: Vec<Ack>,
    /// Orders a node certified.
    redemptions: Vec<Ack>,
    /// Double-spend pairs: two orders of one member at one seq.
    pairs: Vec<(MemberId, Hash, Hash)>,
}

#[derive(Default)]
struct Counts {
    issues_tried: AtomicU64,
    redeems_tried: AtomicU64,
    pairs_tried: AtomicU64,
    pairs_both_failed: AtomicU64,
    failures: AtomicU64,
}

struct Shared {
    urls: Vec<String>,
    tokens: Vec<String>,
    partners: Vec<PartnerId>,
    acks: Mutex<Acks>,
    /// For each node, each time its write-ahead log was damaged: how much of its own log the
    /// partners held then. Acknowledged entries from there on were on its disk alone.
    damages: Mutex<Vec<Vec<u64>>>,
    counts: Counts,
    stop: AtomicBool,
}

fn client(s: &Shared, i: usize) -> Client {
    Client::new(&s.urls[i], Some(s.tokens[i].clone()))
}

impl Shared {
    /// How many times node `i`'s disk has been damaged so far.
    fn damages_of(&self, i: usize) -> usize {
        self.damages
            .lock()
            .map(|d| d[i].len())
            .unwrap_or_else(|e| e.into_inner()[i].len())
    }

    /// Records an acknowledgement by node `node` (`damages_before`: read before the request).
    fn ack(
        &self,
        redemption: bool,
        member: MemberId,
        id: Hash,
        entry: EntryRef,
        damages_before: usize,
    ) {
        let ack = Ack {
            member,
            id,
            entry,
            damages_before,
        };
        let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        if redemption {
            acks.redemptions.push(ack);
        } else {
            acks.issues.push(ack);
        }
    }

    /// Whether `ack`'s entry was on its node's disk alone when that disk was damaged after the
    /// ack (so losing it is the disk's doing, not the protocol's).
    fn lost_with_a_disk(&self, ack: &Ack) -> bool {
        let Some(node) = self.partners.iter().position(|p| *p == ack.entry.partner) else {
            return false;
        };
        let damages = self.damages.lock().unwrap_or_else(|e| e.into_inner());
        damages[node]
            .iter()
            .skip(ack.damages_before)
            .any(|held| ack.entry.seq >= *held)
    }
}

/// Signs an order for `points` of `member` at partner `at`, choosing lots from node `from`'s view.
fn order(
    s: &Shared,
    key: &Keypair,
    from: usize,
    at: usize,
    points: u64,
    seq: Option<u64>,
) -> Result<(String, Hash)> {
    let member = MemberId(key.public());
    let b = client(s, from).balance(&member)?;
    let t = SystemClock.now();
    let lots = select_lots(&b.lots, points, t)?;
    let signed = RedeemOrder {
        member,
        member_seq: seq.unwrap_or(b.next_seq),
        redeemer: s.partners[at],
        points,
        lots,
        time: t,
    }
    .sign(key);
    Ok((order_token(&signed), signed.order.id()))
}

fn worker(s: Arc<Shared>, members: Arc<Vec<Keypair>>, mine: Vec<usize>, seed: u64) {
    let mut rng = Rng(seed | 1);
    while !s.stop.load(Ordering::Relaxed) {
        let node = rng.below(NODES as u64) as usize;
        let m = mine[rng.below(mine.len() as u64) as usize];
        let member = MemberId(members[m].public());
        match rng.below(10) {
            0..=4 => {
                s.counts.issues_tried.fetch_add(1, Ordering::Relaxed);
                let req = IssueRequest {
                    member,
                    points: 10 + rng.below(90),
                    reference: None,
                    expires_in_secs: Some(3600),
                };
                let before = s.damages_of(node);
                match client(&s, node).issue(&req) {
                    Ok(r) => s.ack(false, member, r.lot, r.entry, before),
                    Err(_) => {
                        s.counts.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            5..=8 => {
                s.counts.redeems_tried.fetch_add(1, Ordering::Relaxed);
                let at = (node + 1 + rng.below(3) as usize) % NODES;
                let points = 1 + rng.below(40);
                let before = s.damages_of(at);
                let result = order(&s, &members[m], node, at, points, None)
                    .and_then(|(token, _)| Ok(client(&s, at).redeem(&token)?));
                match result {
                    Ok(r) => s.ack(true, member, r.order_id, r.entry, before),
                    Err(_) => {
                        s.counts.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ => double_spend(&s, &mut rng, node),
        }
    }
}

/// A fresh member earns, then signs two different orders at one seq and submits them at once to two
/// partners. (A fresh member each time: a split vote can leave that seq uncertifiable for good.)
fn double_spend(s: &Shared, rng: &mut Rng, node: usize) {
    s.counts.pairs_tried.fetch_add(1, Ordering::Relaxed);
    s.counts.issues_tried.fetch_add(1, Ordering::Relaxed);
    let key = Keypair::generate();
    let member = MemberId(key.public());
    let req = IssueRequest {
        member,
        points: 100,
        reference: None,
        expires_in_secs: Some(3600),
    };
    let before = s.damages_of(node);
    let Ok(r) = client(s, node).issue(&req) else {
        return;
    };
    s.ack(false, member, r.lot, r.entry, before);
    let (a, b) = (
        (node + 1) % NODES,
        (node + 2 + rng.below(2) as usize) % NODES,
    );
    // Both wallets must see the lot before they sign.
    let seen = |i: usize| {
        wait_for("the lot to replicate", Duration::from_secs(10), || {
            Ok(client(s, i)
                .balance(&member)
                .ok()
                .filter(|b| b.available >= 100)
                .map(|_| ()))
        })
    };
    if seen(a).is_err() || seen(b).is_err() {
        return;
    }
    let (Ok((ta, ida)), Ok((tb, idb))) = (
        order(s, &key, a, a, 60, Some(0)),
        order(s, &key, b, b, 70, Some(0)),
    ) else {
        return;
    };
    if let Ok(mut acks) = s.acks.lock() {
        acks.pairs.push((member, ida, idb));
    }
    let (ca, cb) = (client(s, a), client(s, b));
    let (before_a, before_b) = (s.damages_of(a), s.damages_of(b));
    let (ra, rb) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| ca.redeem(&ta));
        let hb = sc.spawn(|| cb.redeem(&tb));
        (
            ha.join().map(|r| r.ok()).ok().flatten(),
            hb.join().map(|r| r.ok()).ok().flatten(),
        )
    });
    if ra.is_none() && rb.is_none() {
        s.counts.pairs_both_failed.fetch_add(1, Ordering::Relaxed);
    }
    for (r, before) in [(ra, before_a), (rb, before_b)] {
        if let Some(r) = r {
            s.ack(true, member, r.order_id, r.entry, before);
        }
    }
}

struct Args {
    duration: u64,
    seed: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        duration: 60,
        seed: SystemClock.now(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => a.duration = value.parse().context("--duration: seconds")?,
            "--seed" => a.seed = value.parse().context("--seed: a number")?,
            other => {
                bail!("unknown option {other}; usage: coalition-chaos [--duration SECS] [--seed N]")
            }
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = args()?;
    println!(
        "chaos: {} nodes, {} s, seed {}",
        NODES, args.duration, args.seed
    );
    let mut cluster = Cluster::init(NODES, EPOCH_SECS)?;
    let mut disks = Vec::new();
    for i in 0..NODES {
        let disk = SmallDisk::mount(&cluster.dir.path().join(format!("disk-{i}")), DISK_SIZE)?;
        cluster.set_data_dir(i, &disk.path.join("data"))?;
        disks.push(disk);
    }
    let result = cluster
        .start_all()
        .and_then(|()| run(&mut cluster, &disks, &args));
    if result.is_err() {
        eprintln!("{}", cluster.log_tails(30));
    }
    // The nodes go before their disks are unmounted.
    for i in 0..NODES {
        cluster.kill9(i)?;
    }
    drop(disks);
    result
}

/// What the perturbations did, for the summary.
#[derive(Default)]
struct Perturbed {
    kills: u64,
    pauses: u64,
    partitions: u64,
    torn_wals: u64,
    damaged_wals: u64,
    restored_from_copy: u64,
    full_disks: u64,
}

/// The perturbations: the cluster and disks they act on, their dice, what they did and saw.
struct Perturber<'a> {
    cluster: &'a mut Cluster,
    disks: &'a [SmallDisk],
    shared: &'a Shared,
    rng: Rng,
    done: Perturbed,
    problems: Vec<String>,
}

impl Perturber<'_> {
    /// Where node `i`'s cold copy is kept (taken while it was down after a kill).
    fn copy_of(&self, i: usize) -> PathBuf {
        self.cluster.dir.path().join(format!("copy-{i}"))
    }

    fn down_for(&mut self) -> Duration {
        Duration::from_millis(500 + self.rng.below(2500))
    }

    /// kill -9, a cold copy of the data directory while it is down (for a later restore), restart.
    fn kill(&mut self, victim: usize) -> Result<()> {
        self.cluster.kill9(victim)?;
        let copy = self.copy_of(victim);
        if copy.exists() {
            std::fs::remove_dir_all(&copy)?;
        }
        copy_dir(&self.cluster.data_dir(victim), &copy)?;
        std::thread::sleep(self.down_for());
        self.cluster.restart(victim)?;
        self.done.kills += 1;
        Ok(())
    }

    fn pause(&mut self, victim: usize) -> Result<()> {
        if let Some(pid) = self.cluster.nodes[victim].child.as_ref().map(|c| c.id()) {
            signal(pid, "STOP")?;
            std::thread::sleep(self.down_for());
            signal(pid, "CONT")?;
            self.done.pauses += 1;
        }
        Ok(())
    }

    fn partition(&mut self, victim: usize) -> Result<()> {
        // Longer than a pause: long enough for redials to be refused and for the others to
        // certify without the victim.
        let isolated_for = Duration::from_millis(1000 + self.rng.below(4000));
        let node = self.cluster.client(victim);
        let cut = node
            .partition(true)
            .with_context(|| format!("isolating node {victim}"))?;
        if !cut.isolated || cut.connected_peers > 0 {
            self.problems.push(format!(
                "node {victim} still had {} partners up after being isolated",
                cut.connected_peers
            ));
        }
        std::thread::sleep(isolated_for);
        node.partition(false)
            .with_context(|| format!("healing node {victim}"))?;
        self.done.partitions += 1;
        Ok(())
    }

    /// kill -9, then damage the newest write-ahead log: cut its tail (the node must start and
    /// rejoin), or flip a record's checksum at least a block before the end (the node must refuse
    /// to start; it is then started on its last cold copy, or an empty directory, and must
    /// rejoin).
    fn damage_wal(&mut self, victim: usize) -> Result<()> {
        self.cluster.kill9(victim)?;
        // What the partners hold of the victim's log now: anything acknowledged past it was on
        // the victim's disk alone.
        let partner = self.shared.partners[victim];
        let mut held = 0;
        for j in (0..NODES).filter(|j| *j != victim) {
            let status = self.cluster.status(j)?;
            let size = status
                .logs
                .iter()
                .find(|l| l.partner == partner)
                .map(|l| l.size);
            held = held.max(size.unwrap_or(0));
        }
        self.shared
            .damages
            .lock()
            .unwrap_or_else(|e| e.into_inner())[victim]
            .push(held);

        let data = self.cluster.data_dir(victim);
        let wal = disk::newest_wal(&data)?;
        match wal {
            Some((wal, len)) if len >= 3 * WAL_BLOCK && self.rng.below(2) == 0 => {
                let block = 1 + self.rng.below(len / WAL_BLOCK - 2);
                disk::flip(&wal, (block * WAL_BLOCK) as usize)?;
                self.refuses_damaged_wal(victim, block * WAL_BLOCK)?;
                std::fs::remove_dir_all(&data)?;
                let copy = self.copy_of(victim);
                if copy.exists() {
                    copy_dir(&copy, &data)?;
                    self.done.restored_from_copy += 1;
                }
                self.cluster.restart(victim).with_context(|| {
                    format!("node {victim} did not rejoin on its older copy after a damaged write-ahead log")
                })?;
                self.done.damaged_wals += 1;
            }
            wal => {
                if let Some((wal, len)) = wal {
                    let cut = 1 + self.rng.below(len.min(4 * WAL_BLOCK));
                    disk::truncate(&wal, len.saturating_sub(cut))?;
                }
                self.cluster.restart(victim).with_context(|| {
                    format!(
                        "node {victim} did not come back after its write-ahead log lost its tail"
                    )
                })?;
                self.done.torn_wals += 1;
            }
        }
        Ok(())
    }

    /// Starts `victim` on a write-ahead log damaged at `offset` and requires it to stop by itself,
    /// saying so.
    fn refuses_damaged_wal(&mut self, victim: usize, offset: u64) -> Result<()> {
        let log = self.cluster.nodes[victim].log.clone();
        let from = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
        self.cluster.spawn(victim)?;
        let exited = self
            .cluster
            .wait_exit(victim, "the node to refuse its damaged write-ahead log");
        let said = std::fs::read(&log)
            .map(|b| String::from_utf8_lossy(b.get(from..).unwrap_or_default()).into_owned())
            .unwrap_or_default();
        match exited {
            Ok(status) if !status.success() && said.contains("A damaged database") => {}
            Ok(status) => self.problems.push(format!(
                "node {victim} exited with {status} on a write-ahead log damaged at {offset} without \
                 saying its database is damaged:\n{said}"
            )),
            Err(_) => {
                self.problems.push(format!(
                    "node {victim} runs on a write-ahead log damaged at byte {offset}"
                ));
                self.cluster.kill9(victim)?;
            }
        }
        Ok(())
    }

    /// Fills the victim's disk: it must stop with its storage-failed status; then the space comes
    /// back and it is restarted, as a supervisor would.
    fn fill_disk(&mut self, victim: usize) -> Result<()> {
        self.disks[victim].fill()?;
        let exited = self
            .cluster
            .wait_exit(victim, "the node to stop on its full disk");
        match exited {
            Ok(status) if status.code() == Some(EXIT_STORAGE_FAILED) => {}
            Ok(status) => self.problems.push(format!(
                "node {victim} exited with {status} on a full disk, not {EXIT_STORAGE_FAILED}"
            )),
            Err(e) => {
                self.problems
                    .push(format!("node {victim} on a full disk: {e:#}"));
                self.cluster.kill9(victim)?;
            }
        }
        self.disks[victim].free()?;
        self.cluster.restart(victim).with_context(|| {
            format!("node {victim} did not come back after its disk had room again")
        })?;
        self.done.full_disks += 1;
        Ok(())
    }
}

fn run(cluster: &mut Cluster, disks: &[SmallDisk], args: &Args) -> Result<()> {
    let partners: Vec<PartnerId> = cluster
        .client(0)
        .status()?
        .logs
        .iter()
        .map(|l| l.partner)
        .collect();
    let shared = Arc::new(Shared {
        urls: (0..NODES).map(|i| cluster.url(i)).collect(),
        tokens: cluster
            .nodes
            .iter()
            .map(|n| n.settings.api_token.clone())
            .collect(),
        partners,
        acks: Mutex::new(Acks::default()),
        damages: Mutex::new(vec![Vec::new(); NODES]),
        counts: Counts::default(),
        stop: AtomicBool::new(false),
    });
    let members: Arc<Vec<Keypair>> = Arc::new((0..MEMBERS).map(|_| Keypair::generate()).collect());
    let all_members: Vec<MemberId> = members.iter().map(|k| MemberId(k.public())).collect();
    // Two workers, each with its own members, so no member races itself by accident.
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (s, m) = (shared.clone(), members.clone());
            let mine: Vec<usize> = (0..MEMBERS).filter(|i| i % 2 == w).collect();
            let seed = args.seed.wrapping_add(w as u64 * 7919);
            std::thread::spawn(move || worker(s, m, mine, seed))
        })
        .collect();

    // Perturbations, one node at a time.
    let mut p = Perturber {
        cluster,
        disks,
        shared: &shared,
        rng: Rng(args.seed ^ 0x9e37_79b9_7f4a_7c15),
        done: Perturbed::default(),
        problems: Vec::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let perturbed = loop {
        std::thread::sleep(Duration::from_millis(1500 + p.rng.below(2500)));
        if Instant::now() >= deadline {
            break Ok(());
        }
        let victim = p.rng.below(NODES as u64) as usize;
        let step = match p.rng.below(5) {
            0 => p.kill(victim),
            1 => p.pause(victim),
            2 => p.partition(victim),
            3 => p.damage_wal(victim),
            _ => p.fill_disk(victim),
        };
        if step.is_err() {
            break step;
        }
    };
    shared.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    perturbed?;
    let (done, problems, cluster) = (p.done, p.problems, p.cluster);
    println!("chaos: workload stopped; waiting for convergence");

    let mut violations = problems;
    let (found, lost) = check(cluster, &shared, &all_members)?;
    violations.extend(found);
    let acks = shared.acks.lock().unwrap_or_else(|e| e.into_inner());
    let c = &shared.counts;
    println!("chaos summary (seed {}):", args.seed);
    println!(
        "  operations: {} issues tried, {} acknowledged; {} redemptions tried, {} certified (incl. pairs); \
{} double-spend pairs ({} with neither certified); {} operations refused or unanswered",
        c.issues_tried.load(Ordering::Relaxed),
        acks.issues.len(),
        c.redeems_tried.load(Ordering::Relaxed),
        acks.redemptions.len(),
        c.pairs_tried.load(Ordering::Relaxed),
        c.pairs_both_failed.load(Ordering::Relaxed),
        c.failures.load(Ordering::Relaxed),
    );
    println!(
        "  perturbations: {} kill -9 and restart, {} SIGSTOP/SIGCONT pauses, {} partitions healed, \
{} write-ahead logs cut short, {} damaged in the middle ({} restored from a cold copy, the rest \
from an empty directory), {} full disks",
        done.kills,
        done.pauses,
        done.partitions,
        done.torn_wals,
        done.damaged_wals,
        done.restored_from_copy,
        done.full_disks,
    );
    println!(
        "  acknowledged operations lost with a damaged write-ahead log before any partner copied them: {lost}"
    );
    println!("  violations: {}", violations.len());
    for v in &violations {
        println!("    - {v}");
    }
    if !violations.is_empty() {
        bail!("{} invariant violations", violations.len());
    }
    Ok(())
}

/// Waits for convergence, then checks every invariant; returns the violations, and how many
/// acknowledged operations were lost with a damaged disk before any partner had copied them.
fn check(cluster: &Cluster, s: &Shared, members: &[MemberId]) -> Result<(Vec<String>, usize)> {
    let mut v = Vec::new();
    // Same log heads everywhere, nothing parked.
    let heads = |i: usize| -> Result<Vec<(u64, Hash)>> {
        let st = cluster.client(i).status()?;
        if st.pending_entries > 0 {
            bail!("node {i} has {} parked entries", st.pending_entries);
        }
        Ok(st.logs.iter().map(|l| (l.size, l.root)).collect())
    };
    let converged = wait_for(
        "every node to hold the same logs",
        Duration::from_secs(90),
        || {
            let h0 = heads(0)?;
            for i in 1..NODES {
                if heads(i)? != h0 {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        },
    );
    if let Err(e) = converged {
        v.push(format!("logs did not converge: {e:#}"));
        return Ok((v, 0));
    }
    // Each node holds its own fraud proofs (one against itself never leaves it), so ask every node.
    for i in 0..NODES {
        let st = cluster.client(i).status()?;
        if st.isolated {
            v.push(format!("node {i} is still isolated after the run"));
        }
        if !st.equivocations.is_empty() {
            v.push(format!(
                "node {i} recorded an honest partner as equivocating"
            ));
        }
    }
    // Sealing catches up: every node seals the epoch that was current when the workload stopped.
    let target = cluster.client(0).status()?.current_epoch;
    for i in 0..NODES {
        let sealed = cluster.wait_sealed(i, target, Duration::from_secs(EPOCH_SECS * 12));
        if let Err(e) = sealed {
            v.push(format!("{e:#}"));
        }
    }
    for e in 0..=target {
        let reference = cluster.client(0).checkpoint(e).ok().map(|c| c.checkpoint);
        for i in 1..NODES {
            if cluster.client(i).checkpoint(e).ok().map(|c| c.checkpoint) != reference {
                v.push(format!(
                    "checkpoint of epoch {e} differs between node 0 and node {i}"
                ));
            }
        }
    }

    // Balances, conservation and acknowledged operations, member by member, on every node.
    let acks = s.acks.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: BTreeSet<MemberId> = members.iter().copied().collect();
    all.extend(acks.issues.iter().map(|a| a.member));
    let mut lost = BTreeSet::new();
    let mut lots_of: BTreeMap<MemberId, Vec<&Ack>> = BTreeMap::new();
    for a in &acks.issues {
        lots_of.entry(a.member).or_default().push(a);
    }
    let mut orders_of: BTreeMap<MemberId, Vec<&Ack>> = BTreeMap::new();
    for a in &acks.redemptions {
        orders_of.entry(a.member).or_default().push(a);
    }
    for m in &all {
        let mut first: Option<(u64, u64)> = None;
        for i in 0..NODES {
            let c = cluster.client(i);
            let (b, h) = (c.balance(m)?, c.history(m)?);
            let sum = |kind: HistoryKind| {
                h.items
                    .iter()
                    .filter(|x| x.kind == kind)
                    .map(|x| x.points as i128)
                    .sum::<i128>()
            };
            let (earned, spent, expired) = (
                sum(HistoryKind::Earn),
                sum(HistoryKind::Redeem),
                sum(HistoryKind::Expire),
            );
            if earned - spent - expired != b.available as i128 {
                v.push(format!(
                    "node {i}, member {}: earned {earned} − redeemed {spent} − expired {expired} ≠ available {}",
                    m.short(),
                    b.available
                ));
            }
            let redeems: BTreeSet<Hash> = h
                .items
                .iter()
                .filter(|x| x.kind == HistoryKind::Redeem)
                .map(|x| x.record)
                .collect();
            let earns: BTreeSet<Hash> = h
                .items
                .iter()
                .filter(|x| x.kind == HistoryKind::Earn)
                .map(|x| x.record)
                .collect();
            if redeems.len() as u64 != b.next_seq {
                v.push(format!(
                    "node {i}, member {}: {} certificates but next seq {}",
                    m.short(),
                    redeems.len(),
                    b.next_seq
                ));
            }
            let wanted = [
                ("issue", &lots_of, &earns),
                ("redemption", &orders_of, &redeems),
            ];
            for (what, acked, held) in wanted {
                for a in acked.get(m).into_iter().flatten() {
                    if held.contains(&a.id) {
                        continue;
                    }
                    if s.lost_with_a_disk(a) {
                        lost.insert(a.id);
                    } else {
                        v.push(format!(
                            "node {i}: acknowledged {what} {} is missing",
                            a.id.short()
                        ));
                    }
                }
            }
            for (pm, a, bb) in &acks.pairs {
                if pm == m && redeems.contains(a) && redeems.contains(bb) {
                    v.push(format!(
                        "node {i}: both orders of a double-spend pair of {} were certified",
                        m.short()
                    ));
                }
            }
            match first {
                None => first = Some((b.available, b.next_seq)),
                Some(f) if f != (b.available, b.next_seq) => v.push(format!(
                    "member {}: node {i} disagrees with node 0 on balance or seq",
                    m.short()
                )),
                Some(_) => {}
            }
        }
    }
    drop(acks);

    // The whole sealed ledger passes the offline audit.
    let out = cluster.cli(0, &["audit", "verify"])?;
    if let Err(e) = check_output("audit verify", &out) {
        v.push(format!("{e:#}"));
    }
    Ok((v, lost.len()))
}
