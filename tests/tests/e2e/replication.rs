//! Replication of the per-partner logs between real `coalition-node` processes (issue 3):
//! - 1,000 issues spread over four nodes converge to identical log heads and balances;
//! - a node killed with SIGKILL while the others keep issuing restarts and converges, losing nothing
//!   that any node acknowledged;
//! - nodes whose keys are outside the genesis can neither connect nor inject entries;
//! - bad HTTP input gets a clear JSON error with a 4xx status and changes nothing.

use crate::{ALL, LONG_EPOCH_SECS};
use anyhow::{bail, ensure, Context, Result};
use coalition_client::types::{IssueRequest, LogHeadInfo};
use coalition_client::Client;
use coalition_core::crypto::Keypair;
use coalition_core::hash::Hash;
use coalition_core::record::{MemberId, PartnerId, Record, SignedEntry};
use coalition_tests::{
    bin, check_output, free_port_range, heads_key, is_code, logged, run_cli, wait_for, Cluster,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `n` fresh member ids (keys generated here; a member needs no wallet to earn).
fn new_members(n: usize) -> Vec<MemberId> {
    (0..n)
        .map(|_| MemberId(Keypair::generate().public()))
        .collect()
}

/// One acknowledged issue.
#[derive(Debug, Clone)]
struct Acked {
    member: MemberId,
    points: u64,
    lot: Hash,
}

fn issue(client: &Client, member: MemberId, points: u64, reference: String) -> Result<Acked> {
    let r = client
        .issue(&IssueRequest {
            member,
            points,
            reference: Some(reference),
            expires_in_secs: None,
        })
        .with_context(|| format!("issue at {}", client.base()))?;
    ensure!(
        r.points == points,
        "issued {} points, asked {points}",
        r.points
    );
    Ok(Acked {
        member,
        points,
        lot: r.lot,
    })
}

/// Issues `per_node` times at each node in `nodes`, one thread per node, members round-robin.
fn issue_concurrently(
    c: &Cluster,
    nodes: &[usize],
    members: &[MemberId],
    per_node: usize,
    tag: &str,
) -> Result<Vec<Acked>> {
    let results: Vec<Result<Vec<Acked>>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|&i| {
                let client = c.client(i);
                s.spawn(move || -> Result<Vec<Acked>> {
                    let mut out = Vec::with_capacity(per_node);
                    for k in 0..per_node {
                        let member = members[(k * nodes.len() + i) % members.len()];
                        let points = 1 + ((k * 7 + i * 13) % 100) as u64;
                        out.push(issue(&client, member, points, format!("{tag}-{i}-{k}"))?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("issuer thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Waits until every node in `nodes` reports, for every member, exactly the acknowledged lots and
/// their sum as the available balance.
fn wait_balances(c: &Cluster, nodes: &[usize], acked: &[Acked], timeout: Duration) -> Result<()> {
    let mut expected: BTreeMap<MemberId, (u64, BTreeSet<Hash>)> = BTreeMap::new();
    for a in acked {
        let e = expected.entry(a.member).or_default();
        e.0 += a.points;
        e.1.insert(a.lot);
    }
    for &i in nodes {
        let client = c.client(i);
        wait_for(
            &format!("node {i} to hold every acknowledged lot"),
            timeout,
            || {
                for (member, (points, lots)) in &expected {
                    let b = client.balance(member)?;
                    let held: BTreeSet<Hash> = b.lots.iter().map(|l| l.lot).collect();
                    if &held != lots || b.available != *points {
                        let missing = lots.difference(&held).count();
                        let extra = held.difference(lots).count();
                        bail!(
                        "member {}: {} points in {} lots, expected {points} in {} ({missing} missing, {extra} unexpected)",
                        member.short(),
                        b.available,
                        held.len(),
                        lots.len()
                    );
                    }
                }
                Ok(Some(()))
            },
        )?;
    }
    Ok(())
}

fn log_of<'a>(heads: &'a [LogHeadInfo], partner: &PartnerId) -> Result<&'a LogHeadInfo> {
    heads
        .iter()
        .find(|h| h.partner == *partner)
        .context("log missing from status")
}

#[test]
fn thousand_issues_on_four_nodes_converge() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, Duration::from_secs(30))?;
        let members = new_members(50);

        let started = Instant::now();
        let acked = issue_concurrently(c, &ALL, &members, 250, "bulk")?;
        assert_eq!(acked.len(), 1000);
        eprintln!("1000 issues acknowledged in {:?}", started.elapsed());

        let heads = c.wait_converged(&ALL, Duration::from_secs(90))?;
        eprintln!(
            "logs identical on all nodes {:?} after the first issue",
            started.elapsed()
        );
        for i in ALL {
            let log = log_of(&heads, &c.partner_id(i))?;
            assert_eq!(
                log.size, 250,
                "partner {i}'s log holds its 250 issues and nothing else"
            );
        }
        wait_balances(c, &ALL, &acked, Duration::from_secs(30))?;
        let total: u64 = acked.iter().map(|a| a.points).sum();
        let mut seen = 0;
        for m in &members {
            seen += c.client(0).balance(m)?.available;
        }
        assert_eq!(
            seen, total,
            "every point issued is in some member's balance"
        );
        eprintln!(
            "balances identical everywhere {:?} after the first issue",
            started.elapsed()
        );
        Ok(())
    })
}

#[test]
fn killed_node_restarts_and_loses_nothing_acknowledged() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, Duration::from_secs(30))?;
        let members = new_members(20);

        // Every node, the victim included, issues and acknowledges some lots first.
        let mut acked = issue_concurrently(c, &ALL, &members, 40, "before")?;

        // Nodes 0..2 keep issuing in the background while node 3 is killed and restarted.
        let stop = Arc::new(AtomicBool::new(false));
        let background: Arc<Mutex<Vec<Acked>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut threads = Vec::new();
        for i in 0..3 {
            let (client, stop, background, errors, members) = (
                c.client(i),
                stop.clone(),
                background.clone(),
                errors.clone(),
                members.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut k = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let member = members[(k * 3 + i) % members.len()];
                    match issue(
                        &client,
                        member,
                        1 + (k % 50) as u64,
                        format!("during-{i}-{k}"),
                    ) {
                        Ok(a) => background.lock().expect("lock").push(a),
                        Err(e) => errors.lock().expect("lock").push(format!("{e:#}")),
                    }
                    k += 1;
                }
            }));
        }
        let count = |b: &Arc<Mutex<Vec<Acked>>>| b.lock().map(|v| v.len()).unwrap_or(0);
        let at_least = |n: usize, what: &str| {
            wait_for(what, Duration::from_secs(60), || {
                Ok((count(&background) >= n).then_some(()))
            })
        };
        at_least(30, "background issuing to start")?;
        c.kill9(3)?;
        let at_kill = count(&background);
        at_least(at_kill + 90, "90 issues while node 3 is down")?;
        c.restart(3)?;
        let at_restart = count(&background);
        // The restarted node appends to its own log again, right after its pre-kill entries.
        let after = issue_concurrently(c, &[3], &members, 40, "after")?;
        at_least(at_restart + 60, "60 more issues after node 3 restarted")?;
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join()
                .map_err(|_| anyhow::anyhow!("issuer thread panicked"))?;
        }
        let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
        assert!(errors.is_empty(), "issues at live nodes failed: {errors:?}");
        let background = background.lock().map(|b| b.clone()).unwrap_or_default();
        eprintln!(
            "{} background issues ({} while node 3 was down), {} at node 3 after its restart",
            background.len(),
            at_restart - at_kill,
            after.len()
        );
        acked.extend(background);
        acked.extend(after);

        let heads = c.wait_converged(&ALL, Duration::from_secs(90))?;
        let own = log_of(&heads, &c.partner_id(3))?;
        assert_eq!(
            own.size, 80,
            "node 3's log: 40 issues before the kill, 40 after the restart"
        );
        wait_balances(c, &ALL, &acked, Duration::from_secs(30))?;
        Ok(())
    })
}

/// A node process outside the cluster, killed on drop.
struct Outsider {
    child: Child,
    url: String,
    token: String,
    log: PathBuf,
    id: PartnerId,
    p2p: String,
}

impl Drop for Outsider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("----- outsider log ({}) -----", self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Outsider {
    fn client(&self) -> Client {
        Client::new(&self.url, Some(self.token.clone()))
    }
}

/// Writes a one-partner coalition in `dir` with `coalition network init`, points its node at
/// `peers`, optionally swaps its genesis for `genesis` (a file), starts it and waits for its API.
fn start_outsider(
    dir: &Path,
    peers: &[String],
    genesis: Option<serde_json::Value>,
    rust_log: &str,
) -> Result<Outsider> {
    let base = free_port_range(2);
    let out = run_cli(&[
        "network",
        "init",
        "--partners",
        "1",
        "--dir",
        &dir.to_string_lossy(),
        "--base-port",
        &base.to_string(),
    ])?;
    check_output("network init", &out)?;
    let config = dir.join("partner-0").join("node.toml");
    let key: coalition_client::KeyFile = serde_json::from_str(&std::fs::read_to_string(
        dir.join("partner-0").join("partner.key"),
    )?)?;
    let id = PartnerId::from_hex(&key.public)?;
    let mut settings: coalition_client::NodeConfig =
        toml::from_str(&std::fs::read_to_string(&config)?)?;
    settings.peers = peers.to_vec();
    if let Some(mut g) = genesis {
        // The cluster's genesis with this key added as one more partner: the outsider would accept the
        // cluster's nodes; only their refusal keeps it out.
        g["partners"]
            .as_array_mut()
            .context("genesis partners")?
            .push(serde_json::json!({ "name": "Impostor", "id": key.public, "settlement_account": "impostor" }));
        let path = dir.join("forged-genesis.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&g)?)?;
        settings.genesis = path;
    }
    std::fs::write(&config, toml::to_string(&settings)?)?;
    let log = dir.join("node.log");
    let file = std::fs::File::create(&log)?;
    let child = Command::new(bin("coalition-node"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    let mut o = Outsider {
        child,
        url: format!("http://{}", settings.api_listen),
        token: settings.api_token,
        log,
        id,
        p2p: settings.p2p_listen,
    };
    wait_for("the outsider's API", Duration::from_secs(30), || {
        if let Some(st) = o.child.try_wait()? {
            bail!("outsider exited with {st}");
        }
        Ok(Client::new(&o.url, None)
            .get::<serde_json::Value>("/health")
            .ok()
            .map(|_| ()))
    })?;
    Ok(o)
}

/// How many incoming connections from `from` (an outsider's address: it dials from its listen port)
/// a node's debug log says it refused or failed. Either side's allow list may close the connection
/// first, so both "denied" and a failed negotiation count: neither is a connection.
fn refusals_from(log: &Path, from: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let needle = format!("from={from} ");
    text.lines()
        .filter(|l| l.contains("incoming connection refused or failed") && l.contains(&needle))
        .count()
}

#[test]
fn keys_outside_the_genesis_cannot_connect_or_inject() -> Result<()> {
    let mut c = Cluster::init(4, LONG_EPOCH_SECS)?;
    let rust_log = "info,libp2p=warn,coalition_node::p2p=debug";
    c.rust_log = rust_log.into();
    c.start_all()?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, Duration::from_secs(30))?;
        let member = new_members(1)[0];
        let mine = issue(&c.client(0), member, 10, "cluster-0".into())?;
        let before = c.wait_converged(&ALL, Duration::from_secs(30))?;

        let peers: Vec<String> = c
            .nodes
            .iter()
            .map(|n| n.settings.p2p_listen.clone())
            .collect();
        let genesis: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&c.genesis_path)?)?;
        // A partner of another coalition, and an impostor whose own genesis lists the cluster's partners.
        let stranger = start_outsider(&c.dir.path().join("stranger"), &peers, None, rust_log)?;
        let impostor = start_outsider(
            &c.dir.path().join("impostor"),
            &peers,
            Some(genesis),
            rust_log,
        )?;
        for k in 0..5 {
            issue(&stranger.client(), member, 1000, format!("outsider-{k}"))?;
        }
        // The impostor is a partner only in its own genesis: no partner confirms its rejoin after
        // the start (docs/protocol.md), so it signs nothing at all.
        let refused = impostor.client().issue(&IssueRequest {
            member,
            points: 1000,
            reference: Some("impostor".into()),
            expires_in_secs: None,
        });
        match refused {
            Err(e) => ensure!(is_code(&e, "rejoining"), "the impostor's issue: {e}"),
            Ok(r) => bail!("the impostor signed an issue of {} points", r.points),
        }

        // Each cluster node refuses both outsiders, repeatedly (they keep redialling).
        for i in ALL {
            wait_for(
                &format!("node {i} to refuse both outsiders at least twice"),
                Duration::from_secs(40),
                || {
                    let seen: Vec<usize> = [&stranger, &impostor]
                        .iter()
                        .map(|o| refusals_from(&c.nodes[i].log, &o.p2p))
                        .collect();
                    if seen.iter().all(|&n| n >= 2) {
                        return Ok(Some(()));
                    }
                    bail!("refusals of the stranger and the impostor so far: {seen:?}")
                },
            )?;
        }
        // Replication among partners still works: a new entry reaches every node.
        let barrier = issue(&c.client(1), member, 5, "cluster-1".into())?;
        let after = c.wait_converged(&ALL, Duration::from_secs(30))?;

        let genesis = c.genesis()?;
        let partners: Vec<PartnerId> = genesis.partners.iter().map(|p| p.id).collect();
        for i in ALL {
            let s = c.status(i)?;
            let peers: Vec<PartnerId> = s.peers.iter().map(|p| p.partner).collect();
            let expected: Vec<PartnerId> = partners
                .iter()
                .copied()
                .filter(|p| *p != c.partner_id(i))
                .collect();
            assert_eq!(
                peers, expected,
                "node {i} lists only genesis partners as peers"
            );
            assert!(
                s.peers.iter().all(|p| p.connected),
                "node {i}: every partner connected: {:?}",
                s.peers
            );
            assert_eq!(
                s.logs.iter().map(|l| l.partner).collect::<Vec<_>>(),
                partners,
                "node {i} holds only genesis logs"
            );
            assert!(s.equivocations.is_empty(), "node {i}: no fraud proofs");
            assert_eq!(s.pending_entries, 0, "node {i}: nothing parked");
            for o in [&stranger, &impostor] {
                match c.client(i).log_range(&o.id, 0, 10) {
                    Err(e) => {
                        assert_eq!(e.code(), Some("not_found"), "node {i}: outsider's log: {e}")
                    }
                    Ok(r) => panic!("node {i} serves the outsider's log: {r:?}"),
                }
            }
            let b = c.client(i).balance(&member)?;
            assert_eq!(
                b.available,
                mine.points + barrier.points,
                "node {i}: the outsiders' issues are not in the balance"
            );
        }
        // Only partner 1's log moved (by the one barrier entry).
        let (p1, mut expect) = (c.partner_id(1), heads_key(&before));
        for h in &mut expect {
            if h.0 == p1 {
                h.1 += 1;
                h.2 = log_of(&after, &p1)?.root;
            }
        }
        assert_eq!(
            heads_key(&after),
            expect,
            "the cluster's logs changed only by the partners' own entries"
        );

        // Nothing leaked the other way either: the outsiders hold none of the cluster's entries.
        for o in [&stranger, &impostor] {
            let s = o.client().status()?;
            assert!(
                s.peers.iter().all(|p| !p.connected),
                "outsider connected to {:?}",
                s.peers
            );
            for l in s.logs.iter().filter(|l| l.partner != o.id) {
                assert_eq!(l.size, 0, "outsider received {}'s log", l.name);
            }
            // The stranger's five issues, and an epoch close if its 60-second epoch ended
            // meanwhile; none of the impostor's.
            let own = o.client().log_range(&o.id, 0, 100)?;
            let mut issues = 0;
            for hex_entry in &own.entries {
                let bytes = hex::decode(hex_entry).context("log entry is not hex")?;
                let entry: SignedEntry = coalition_core::encoding::decode(&bytes)?;
                match entry.entry.record {
                    Record::Issue(_) => issues += 1,
                    Record::EpochClose(_) => {}
                    other => bail!("the outsider's log holds {other:?}"),
                }
            }
            let expected = if o.id == stranger.id { 5 } else { 0 };
            assert_eq!(issues, expected, "the outsider's own issues");
        }
        Ok(())
    })
}
