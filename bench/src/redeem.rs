//! Redemption on 4 real `coalition-node` processes over loopback (started with the end-to-end
//! harness, `coalition_tests::Cluster`, from the release binaries).
//!
//! Set-up (not timed): `--members` members, each credited one lot of 100 points through
//! `POST /v1/issue` at one partner; wait until the four nodes hold identical logs. Each member then
//! signs one order for 10 points at a *different* partner (member-side code: lot selection from
//! `coalition_core::lot_selection::select_candidates`, token from `coalition_client::order::order_token`).
//! Timed: `--concurrency` client threads submit the tokens (`POST /v1/redeem`) in a closed loop;
//! latency is from submission to the certificate in the response.

use crate::world::{member_key, rss_of, secs, write_json};
use crate::Args;
use anyhow::{ensure, Context, Result};
use coalition_client::order::order_token;
use coalition_client::types::IssueRequest;
use coalition_client::Client;
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::lot_selection::{select_candidates, LotCandidate};
use coalition_core::record::{MemberId, RedeemOrder};
use coalition_tests::Cluster;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NODES: usize = 4;
const LOT_POINTS: u64 = 100;
const REDEEM_POINTS: u64 = 10;

/// The `q`-quantile of sorted durations, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    (sorted[i].as_secs_f64() * 1e5).round() / 100.0
}

pub(crate) fn run(args: &Args) -> Result<()> {
    let out = args.path("out")?;
    let members_n: usize = args.num("members", 10_000usize)?;
    let concurrency: usize = args.num("concurrency", 64usize)?;
    let max_secs: u64 = args.num("max-secs", 30u64)?;
    let t = Instant::now();
    // Epochs of an hour: no epoch closes or seals during the run, as in production (a day).
    let cluster = Cluster::start(NODES, 3600).context("starting 4 nodes")?;
    let all: Vec<usize> = (0..NODES).collect();
    cluster.wait_connected(&all, Duration::from_secs(60))?;
    let partners: Vec<_> = (0..NODES).map(|i| cluster.partner_id(i)).collect();
    let started_secs = t.elapsed();

    // Set-up: one lot per member, issued at partner k % 4, 16 POS clients at a time.
    let keys: Vec<Keypair> = (0..members_n as u32).map(member_key).collect();
    let ids: Vec<MemberId> = keys.iter().map(|k| MemberId(k.public())).collect();
    let t = Instant::now();
    let lots: Mutex<Vec<Option<(coalition_core::hash::Hash, u64)>>> =
        Mutex::new(vec![None; members_n]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let clients: Vec<Client> = (0..NODES).map(|i| cluster.client(i)).collect();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= members_n {
                            return Ok(());
                        }
                        let r = clients[k % NODES].issue(&IssueRequest {
                            member: ids[k],
                            points: LOT_POINTS,
                            reference: Some(format!("bench purchase {k}")),
                            expires_in_secs: Some(30 * 86_400),
                        })?;
                        lots.lock().unwrap_or_else(|e| e.into_inner())[k] =
                            Some((r.lot, r.expires_at));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("issuing thread panicked"))??;
        }
        Ok(())
    })?;
    let issue_secs = t.elapsed();
    let issue_rate = members_n as f64 / issue_secs.as_secs_f64();
    eprintln!(
        "  issued {members_n} lots in {:.1} s ({issue_rate:.0}/s)",
        issue_secs.as_secs_f64()
    );
    let t = Instant::now();
    cluster.wait_converged(&all, Duration::from_secs(300))?;
    let converge_secs = t.elapsed();
    eprintln!(
        "  replicas converged {:.1} s later",
        converge_secs.as_secs_f64()
    );

    // Members sign their orders (not timed: a wallet does this before reaching the till).
    let now = SystemClock.now();
    let lots = lots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut tokens: Vec<(usize, String)> = Vec::with_capacity(members_n);
    for (k, key) in keys.iter().enumerate() {
        let (lot, expires_at) = lots[k].context("member without a lot")?;
        let candidates = [LotCandidate {
            id: lot,
            remaining: LOT_POINTS,
            expires_at,
        }];
        let redeemer = (k + 1) % NODES;
        let order = RedeemOrder {
            member: ids[k],
            member_seq: 0,
            redeemer: partners[redeemer],
            points: REDEEM_POINTS,
            lots: select_candidates(&candidates, REDEEM_POINTS, now)?,
            time: now,
        }
        .sign(key);
        tokens.push((redeemer, order_token(&order)));
    }

    // Timed: a closed loop of `concurrency` members at the tills.
    let next = AtomicUsize::new(0);
    let deadline = Duration::from_secs(max_secs);
    let results: Mutex<(Vec<Duration>, BTreeMap<String, u64>)> =
        Mutex::new((Vec::new(), BTreeMap::new()));
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                let clients: Vec<Client> = (0..NODES).map(|i| cluster.client(i)).collect();
                let mut lat = Vec::new();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= tokens.len() || t.elapsed() >= deadline {
                        break;
                    }
                    let (node, token) = &tokens[k];
                    let sent = Instant::now();
                    match clients[*node].redeem(token) {
                        Ok(r) if r.votes >= 3 => lat.push(sent.elapsed()),
                        Ok(r) => *errors.entry(format!("only {} votes", r.votes)).or_default() += 1,
                        Err(e) => {
                            *errors
                                .entry(e.code().unwrap_or("transport").to_string())
                                .or_default() += 1
                        }
                    }
                }
                let mut g = results.lock().unwrap_or_else(|e| e.into_inner());
                g.0.extend(lat);
                for (k, v) in errors {
                    *g.1.entry(k).or_default() += v;
                }
            });
        }
    });
    let wall = t.elapsed();
    let (mut lat, errors) = results.into_inner().unwrap_or_else(|e| e.into_inner());
    lat.sort();
    let ok = lat.len();
    ensure!(
        ok > 0,
        "no redemption succeeded: {errors:?}\n{}",
        cluster.log_tails(20)
    );
    let rate = ok as f64 / wall.as_secs_f64();
    let (p50, p99) = (quantile_ms(&lat, 0.50), quantile_ms(&lat, 0.99));
    eprintln!(
        "  {ok} certificates in {:.1} s: {rate:.0}/s, p50 {p50} ms, p99 {p99} ms, failures {errors:?}",
        wall.as_secs_f64()
    );

    // Memory of the real node processes, and how long the replicas take to hold every certificate.
    let node_hwm: Vec<f64> = cluster
        .nodes
        .iter()
        .map(|n| {
            n.child
                .as_ref()
                .and_then(|c| rss_of(Some(c.id())))
                .map(|r| r.0)
                .unwrap_or(0)
        })
        .map(|b| (b as f64 / (1 << 20) as f64 * 10.0).round() / 10.0)
        .collect();
    let t = Instant::now();
    let converged_after = cluster
        .wait_converged(&all, Duration::from_secs(120))
        .map(|_| secs(t.elapsed()))
        .ok();

    write_json(
        &out,
        &json!({
            "method": "4 real coalition-node processes (release) on 127.0.0.1, started by the coalition-tests harness; one lot per member issued over HTTP first; then each member's pre-signed 10-point order is POSTed to /v1/redeem at a partner other than its issuer by a closed loop of concurrent clients; latency = submission to certificate returned",
            "nodes": NODES,
            "members": members_n,
            "concurrency": concurrency,
            "max_secs": max_secs,
            "certificates": ok,
            "failures": errors,
            "secs": secs(wall),
            "certificates_per_sec": rate.round(),
            "p50_ms": p50,
            "p90_ms": quantile_ms(&lat, 0.90),
            "p99_ms": p99,
            "max_ms": quantile_ms(&lat, 1.0),
            "setup": {
                "start_secs": secs(started_secs),
                "issue_secs": secs(issue_secs),
                "issues_per_sec": issue_rate.round(),
                "converge_secs": secs(converge_secs),
            },
            "replicas_converged_after_secs": converged_after,
            "node_peak_rss_mib": node_hwm,
        }),
    )
}
