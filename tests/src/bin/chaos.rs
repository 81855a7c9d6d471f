//! The chaos run: 4 real nodes under a random workload of issues, cross-partner redemptions and
//! deliberate double-spend pairs, while nodes are killed (`kill -9`) and restarted, paused
//! (SIGSTOP/SIGCONT), or cut off from their peers and healed (the admin API's partition switch, so
//! no traffic but loopback's is touched). At the end it waits for convergence and checks the
//! invariants: identical logs, checkpoints and balances on every node; no partner recorded as
//! equivocating; points conserved and never negative; at most one certificate per (member, seq);
//! every acknowledged operation present everywhere; the ledger passes the offline audit. Prints a summary; exits non-zero on any violation.
//!
//! `coalition-chaos [--duration SECS] [--seed N]` (see scripts/chaos.sh).

use anyhow::{bail, Context, Result};
use coalition_client::order::{order_token, select_lots};
use coalition_client::types::{HistoryKind, IssueRequest};
use coalition_client::Client;
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::hash::Hash;
use coalition_core::record::{MemberId, PartnerId, RedeemOrder};
use coalition_tests::{check_output, signal, wait_for, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: usize = 4;
const EPOCH_SECS: u64 = 5;
const MEMBERS: usize = 10;

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

#[derive(Default)]
struct Acks {
    /// Lots whose issue a node acknowledged, by member.
    issues: Vec<(MemberId, Hash)>,
    /// Orders a node certified, by member.
    redemptions: Vec<(MemberId, Hash)>,
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
    counts: Counts,
    stop: AtomicBool,
}

fn client(s: &Shared, i: usize) -> Client {
    Client::new(&s.urls[i], Some(s.tokens[i].clone()))
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
                match client(&s, node).issue(&req) {
                    Ok(r) => s
                        .acks
                        .lock()
                        .map(|mut a| a.issues.push((member, r.lot)))
                        .unwrap_or(()),
                    Err(_) => {
                        s.counts.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            5..=8 => {
                s.counts.redeems_tried.fetch_add(1, Ordering::Relaxed);
                let at = (node + 1 + rng.below(3) as usize) % NODES;
                let points = 1 + rng.below(40);
                let result = order(&s, &members[m], node, at, points, None)
                    .and_then(|(token, _)| Ok(client(&s, at).redeem(&token)?));
                match result {
                    Ok(r) => s
                        .acks
                        .lock()
                        .map(|mut a| a.redemptions.push((member, r.order_id)))
                        .unwrap_or(()),
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
    let Ok(r) = client(s, node).issue(&req) else {
        return;
    };
    if let Ok(mut a) = s.acks.lock() {
        a.issues.push((member, r.lot));
    }
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
    let (ra, rb) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| ca.redeem(&ta));
        let hb = sc.spawn(|| cb.redeem(&tb));
        (
            ha.join().map(|r| r.ok()).ok().flatten(),
            hb.join().map(|r| r.ok()).ok().flatten(),
        )
    });
    let mut acks = s.acks.lock().unwrap_or_else(|e| e.into_inner());
    if ra.is_none() && rb.is_none() {
        s.counts.pairs_both_failed.fetch_add(1, Ordering::Relaxed);
    }
    for r in [ra, rb].into_iter().flatten() {
        acks.redemptions.push((member, r.order_id));
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
    let mut cluster = Cluster::start(NODES, EPOCH_SECS)?;
    let result = run(&mut cluster, &args);
    if result.is_err() {
        eprintln!("{}", cluster.log_tails(30));
    }
    result
}

fn run(cluster: &mut Cluster, args: &Args) -> Result<()> {
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

    // Perturbations: one node at a time is killed and restarted, paused and resumed, or isolated
    // and healed.
    let mut rng = Rng(args.seed ^ 0x9e37_79b9_7f4a_7c15);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let (mut kills, mut pauses, mut partitions) = (0u64, 0u64, 0u64);
    let mut problems = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1500 + rng.below(2500)));
        if Instant::now() >= deadline {
            break;
        }
        let victim = rng.below(NODES as u64) as usize;
        let down_for = Duration::from_millis(500 + rng.below(2500));
        match rng.below(3) {
            0 => {
                cluster.kill9(victim)?;
                std::thread::sleep(down_for);
                cluster.restart(victim)?;
                kills += 1;
            }
            1 => {
                if let Some(pid) = cluster.nodes[victim].child.as_ref().map(|c| c.id()) {
                    signal(pid, "STOP")?;
                    std::thread::sleep(down_for);
                    signal(pid, "CONT")?;
                    pauses += 1;
                }
            }
            _ => {
                // Longer than a pause: long enough for redials to be refused and for the others to
                // certify without the victim.
                let isolated_for = Duration::from_millis(1000 + rng.below(4000));
                let node = cluster.client(victim);
                let cut = node
                    .partition(true)
                    .with_context(|| format!("isolating node {victim}"))?;
                if !cut.isolated || cut.connected_peers > 0 {
                    problems.push(format!(
                        "node {victim} still had {} partners up after being isolated",
                        cut.connected_peers
                    ));
                }
                std::thread::sleep(isolated_for);
                node.partition(false)
                    .with_context(|| format!("healing node {victim}"))?;
                partitions += 1;
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    println!("chaos: workload stopped; waiting for convergence");

    let mut violations = problems;
    violations.extend(check(cluster, &shared, &all_members)?);
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
        "  perturbations: {kills} kill -9 and restart, {pauses} SIGSTOP/SIGCONT pauses, {partitions} partitions healed"
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

/// Waits for convergence, then checks every invariant; returns the violations.
fn check(cluster: &Cluster, s: &Shared, members: &[MemberId]) -> Result<Vec<String>> {
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
        return Ok(v);
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
    all.extend(acks.issues.iter().map(|(m, _)| *m));
    let mut lots_of: BTreeMap<MemberId, Vec<Hash>> = BTreeMap::new();
    for (m, lot) in &acks.issues {
        lots_of.entry(*m).or_default().push(*lot);
    }
    let mut orders_of: BTreeMap<MemberId, Vec<Hash>> = BTreeMap::new();
    for (m, o) in &acks.redemptions {
        orders_of.entry(*m).or_default().push(*o);
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
            for lot in lots_of.get(m).into_iter().flatten() {
                if !earns.contains(lot) {
                    v.push(format!(
                        "node {i}: acknowledged issue {} is missing",
                        lot.short()
                    ));
                }
            }
            for o in orders_of.get(m).into_iter().flatten() {
                if !redeems.contains(o) {
                    v.push(format!(
                        "node {i}: acknowledged redemption {} is missing",
                        o.short()
                    ));
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
    Ok(v)
}
