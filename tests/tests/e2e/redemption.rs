//! Quorum-certified redemptions on 4 real `coalition-node` processes:
//! - points earned at partners 0 and 1 are redeemed at partners 2 and 3 through the CLI; every node
//!   shows the same balances and histories, and the certificates sit in partner 2's and 3's logs;
//! - 50 double-spend races: one member signs two different orders with the same sequence number and
//!   they are submitted at the same moment at two partners; at most one certificate exists for that
//!   (member, seq) on any node and the member's balance is the same everywhere;
//! - an overspend, an expired lot, another member's lot and a forged member signature are each refused
//!   with their reason, and nothing changes;
//! - with one of four nodes stopped redemptions complete; with two stopped they fail with
//!   "no quorum: 2 of 3 votes" within a bounded time and nothing changes.
//!
//! Certificates with duplicate or non-partner votes cannot be submitted through any public path (the
//! API takes member-signed orders, not certificates); the `byzantine` module sends them over the wire.

use crate::{ALL, LONG_EPOCH_SECS};
use anyhow::{bail, ensure, Context, Result};
use coalition_client::order::order_token;
use coalition_client::types::{Balance, History, HistoryKind, IssueRequest, RedeemResponse};
use coalition_client::ClientError;
use coalition_core::cert::verify_cert;
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::encoding::decode;
use coalition_core::hash::Hash;
use coalition_core::record::{
    LotSpend, MemberId, PartnerId, Points, Record, RedeemOrder, SignedEntry, SignedOrder,
};
use coalition_tests::{heads_key, is_code, logged, raw_http, signal, wait_for, Cluster};
use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const PASS: &str = "redemption test passphrase";
/// How long replication may take in these tests.
const REPLICATE: Duration = Duration::from_secs(30);

/// A member whose key the test holds (no wallet: orders are signed here).
pub(crate) struct Member {
    key: Keypair,
    pub(crate) id: MemberId,
}

impl Member {
    pub(crate) fn new() -> Member {
        let key = Keypair::generate();
        let id = MemberId(key.public());
        Member { key, id }
    }

    /// An order at `redeemer` with sequence number `seq`, spending `lots`, signed by this member.
    pub(crate) fn order(
        &self,
        seq: u64,
        redeemer: PartnerId,
        lots: &[(Hash, Points)],
    ) -> SignedOrder {
        RedeemOrder {
            member: self.id,
            member_seq: seq,
            redeemer,
            points: lots.iter().map(|(_, p)| p).sum(),
            lots: lots
                .iter()
                .map(|&(lot, points)| LotSpend { lot, points })
                .collect(),
            time: SystemClock.now(),
        }
        .sign(&self.key)
    }
}

/// Issues `points` to `member` at node `i`; returns the lot id and its expiry.
pub(crate) fn issue(
    c: &Cluster,
    i: usize,
    member: MemberId,
    points: Points,
    expires_in_secs: Option<u64>,
) -> Result<(Hash, u64)> {
    let r = c
        .client(i)
        .issue(&IssueRequest {
            member,
            points,
            reference: None,
            expires_in_secs,
        })
        .with_context(|| format!("issuing {points} points at node {i}"))?;
    Ok((r.lot, r.expires_at))
}

/// A balance without the node's clock, so that two answers can be compared.
fn comparable(mut b: Balance) -> Balance {
    b.as_of = 0;
    b
}

/// `member`'s balance as every node in `nodes` reports it.
fn balances(c: &Cluster, nodes: &[usize], member: &MemberId) -> Result<Vec<Balance>> {
    nodes
        .iter()
        .map(|&i| Ok(comparable(c.client(i).balance(member)?)))
        .collect()
}

/// Waits until every node in `nodes` reports `available` points and `next_seq` for `member`, with
/// identical lots; returns the balance.
pub(crate) fn wait_balance_everywhere(
    c: &Cluster,
    nodes: &[usize],
    member: &MemberId,
    available: Points,
    next_seq: u64,
) -> Result<Balance> {
    wait_for(
        &format!(
            "nodes {nodes:?} to show member {} with {available} points, next seq {next_seq}",
            member.short()
        ),
        REPLICATE,
        || {
            let all = balances(c, nodes, member)?;
            let first = all.first().context("no nodes")?;
            if first.available != available || first.next_seq != next_seq {
                bail!(
                    "node {} shows {} points, next seq {}",
                    nodes[0],
                    first.available,
                    first.next_seq
                );
            }
            if let Some((k, b)) = all.iter().enumerate().find(|(_, b)| *b != first) {
                bail!(
                    "node {} shows {b:?}, node {} shows {first:?}",
                    nodes[k],
                    nodes[0]
                );
            }
            Ok(Some(first.clone()))
        },
    )
}

/// What must not change when something is refused: every node's log heads and members' balances.
#[derive(Debug, PartialEq)]
struct Snapshot {
    heads: Vec<Vec<(PartnerId, u64, Hash)>>,
    balances: Vec<Vec<Balance>>,
}

fn snapshot(c: &Cluster, nodes: &[usize], members: &[MemberId]) -> Result<Snapshot> {
    let heads = nodes
        .iter()
        .map(|&i| {
            let s = c.status(i)?;
            ensure!(s.pending_entries == 0, "node {i} has entries parked");
            Ok(heads_key(&s.logs))
        })
        .collect::<Result<_>>()?;
    let balances = members
        .iter()
        .map(|m| balances(c, nodes, m))
        .collect::<Result<_>>()?;
    Ok(Snapshot { heads, balances })
}

/// Every entry of `partner`'s log as node `i` holds it.
fn log_entries(c: &Cluster, i: usize, partner: &PartnerId) -> Result<Vec<SignedEntry>> {
    let client = c.client(i);
    let mut entries = Vec::new();
    loop {
        let range = client
            .log_range(partner, entries.len() as u64, 1000)
            .with_context(|| format!("reading log {} at node {i}", partner.short()))?;
        if range.entries.is_empty() {
            ensure!(
                entries.len() as u64 >= range.size,
                "node {i} served {} of {} entries",
                entries.len(),
                range.size
            );
            return Ok(entries);
        }
        for hex_entry in &range.entries {
            let bytes = hex::decode(hex_entry).context("log entry is not hex")?;
            entries.push(decode::<SignedEntry>(&bytes).context("log entry is not a signed entry")?);
        }
    }
}

/// One certificate found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CertAt {
    /// The log holding it (the redeemer's).
    log: PartnerId,
    /// Its position there.
    seq: u64,
    /// The order id.
    order: Hash,
}

/// Every certificate in every log node `i` holds, by (member, member seq). Each must verify against
/// the genesis.
fn certificates(c: &Cluster, i: usize) -> Result<BTreeMap<(MemberId, u64), Vec<CertAt>>> {
    let genesis = c.genesis()?;
    let mut found: BTreeMap<(MemberId, u64), Vec<CertAt>> = BTreeMap::new();
    for p in genesis.partners.iter().map(|p| p.id) {
        for e in log_entries(c, i, &p)? {
            if let Record::Redeem(cert) = &e.entry.record {
                verify_cert(&genesis, cert)
                    .with_context(|| format!("certificate in log {} at node {i}", p.short()))?;
                let o = &cert.order.order;
                ensure!(
                    o.redeemer == e.entry.partner,
                    "a certificate for {} sits in {}'s log",
                    o.redeemer.short(),
                    p.short()
                );
                found
                    .entry((o.member, o.member_seq))
                    .or_default()
                    .push(CertAt {
                        log: p,
                        seq: e.entry.seq,
                        order: o.id(),
                    });
            }
        }
    }
    Ok(found)
}

/// Expects an API refusal with `code` and HTTP `status` whose message contains `needle`; returns
/// the message.
pub(crate) fn expect_error(
    what: &str,
    r: Result<RedeemResponse, ClientError>,
    status: u16,
    code: &str,
    needle: &str,
) -> Result<String> {
    match r {
        Ok(receipt) => bail!(
            "{what}: order {} was certified, expected `{code}`",
            receipt.order_id
        ),
        Err(e) => {
            let text = e.to_string();
            ensure!(
                is_code(&e, code),
                "{what}: expected code `{code}`, got: {text}"
            );
            ensure!(
                matches!(e, ClientError::Api { status: s, .. } if s == status),
                "{what}: expected HTTP {status}: {text}"
            );
            ensure!(
                text.contains(needle),
                "{what}: the reason does not say {needle:?}: {text}"
            );
            Ok(text)
        }
    }
}

#[test]
fn earn_at_two_partners_redeem_at_the_other_two() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let started = Instant::now();
        let ids: Vec<PartnerId> = ALL.iter().map(|&i| c.partner_id(i)).collect();

        // Two members with wallets, made by the CLI.
        let mut members = Vec::new();
        for name in ["alice", "bob"] {
            let w = c
                .dir
                .path()
                .join(format!("{name}.wallet"))
                .to_string_lossy()
                .to_string();
            let v = c.wallet_json(0, PASS, &["member", "new", "--wallet", &w])?;
            let id: MemberId = v["member"].as_str().context("member id")?.parse()?;
            members.push((w, id));
        }
        let (alice_w, alice) = members[0].clone();
        let (bob_w, bob) = members[1].clone();

        // Earn at partners 0 and 1.
        for (i, member, points) in [(0, alice, 100), (1, alice, 50), (0, bob, 80), (1, bob, 120)] {
            let pts = points.to_string();
            c.cli_json(
                i,
                &[
                    "partner",
                    "issue",
                    "--member",
                    &member.to_hex(),
                    "--points",
                    &pts,
                ],
            )?;
        }
        wait_balance_everywhere(c, &ALL, &alice, 150, 0)?;
        wait_balance_everywhere(c, &ALL, &bob, 200, 0)?;

        // Redeem at partners 2 and 3: each member once at each, the first spending both lots.
        let mut receipts: Vec<(usize, MemberId, RedeemResponse)> = Vec::new();
        let mut redeem = |at: usize, wallet: &str, member: MemberId, points: u64| -> Result<()> {
            let pts = points.to_string();
            let v = c.wallet_json(
                at,
                PASS,
                &["member", "redeem", "--wallet", wallet, "--points", &pts],
            )?;
            let r: RedeemResponse = serde_json::from_value(v).context("parsing the receipt")?;
            ensure!(
                r.points == points,
                "receipt for {} points, asked {points}",
                r.points
            );
            ensure!(r.votes >= 3, "certified with {} votes", r.votes);
            ensure!(
                r.entry.partner == ids[at],
                "the certificate went to log {}, not partner {at}'s",
                r.entry.partner.short()
            );
            ensure!(
                r.cert.order.order.redeemer == ids[at] && r.cert.order.order.member == member,
                "receipt: {r:?}"
            );
            receipts.push((at, member, r));
            Ok(())
        };
        redeem(2, &alice_w, alice, 120)?;
        redeem(3, &bob_w, bob, 150)?;
        // The wallet takes the next sequence number from the node it redeems at: wait for it there.
        wait_balance_everywhere(c, &ALL, &alice, 30, 1)?;
        wait_balance_everywhere(c, &ALL, &bob, 50, 1)?;
        redeem(3, &alice_w, alice, 20)?;
        redeem(2, &bob_w, bob, 30)?;

        // Every node: the same logs, the same balances, the same histories.
        let a = wait_balance_everywhere(c, &ALL, &alice, 10, 2)?;
        let b = wait_balance_everywhere(c, &ALL, &bob, 20, 2)?;
        c.wait_converged(&ALL, REPLICATE)?;
        let cli_balance = c.cli_json(3, &["member", "balance", "--member", &alice.to_hex()])?;
        ensure!(
            cli_balance["available"] == 10 && cli_balance["next_seq"] == 2,
            "CLI balance at node 3: {cli_balance}"
        );
        ensure!(
            a.lots.len() == 1 && b.lots.len() == 1,
            "lots left: {:?} {:?}",
            a.lots,
            b.lots
        );

        let history_0: History = serde_json::from_value(
            c.cli_json(0, &["member", "history", "--member", &alice.to_hex()])?,
        )?;
        for i in ALL {
            for (member, earned) in [(alice, 2), (bob, 2)] {
                let h = c.client(i).history(&member)?;
                let earns = h
                    .items
                    .iter()
                    .filter(|x| x.kind == HistoryKind::Earn)
                    .count();
                ensure!(
                    earns == earned,
                    "node {i}: {earns} earn lines for {}",
                    member.short()
                );
                let mut redeems: Vec<(PartnerId, Hash, u64)> = h
                    .items
                    .iter()
                    .filter(|x| x.kind == HistoryKind::Redeem)
                    .map(|x| (x.partner, x.record, x.points))
                    .collect();
                let mut want: Vec<(PartnerId, Hash, u64)> = receipts
                    .iter()
                    .filter(|(_, m, _)| *m == member)
                    .map(|(at, _, r)| (ids[*at], r.order_id, r.points))
                    .collect();
                redeems.sort();
                want.sort();
                ensure!(
                    redeems == want,
                    "node {i}: redeem lines of {} are {redeems:?}, want {want:?}",
                    member.short()
                );
                if i == 0 && member == alice {
                    ensure!(history_0 == h, "the CLI's history differs from the API's");
                }
            }

            // Each certificate sits in its redeemer's log at the position of the receipt.
            let certs = certificates(c, i)?;
            ensure!(
                certs.len() == 4,
                "node {i} holds {} certificates: {certs:?}",
                certs.len()
            );
            for (at, member, r) in &receipts {
                let seq = r.cert.order.order.member_seq;
                let want = CertAt {
                    log: ids[*at],
                    seq: r.entry.seq,
                    order: r.order_id,
                };
                ensure!(
                    certs.get(&(*member, seq)) == Some(&vec![want.clone()]),
                    "node {i}: certificates for ({}, {seq}) are {:?}, want {want:?}",
                    member.short(),
                    certs.get(&(*member, seq))
                );
                let entries = log_entries(c, i, &ids[*at])?;
                let entry = entries
                    .get(r.entry.seq as usize)
                    .context("receipt position beyond the log")?;
                ensure!(
                    entry.id() == r.entry.entry_id,
                    "node {i}: the entry at the receipt's position is another one"
                );
            }
        }
        eprintln!(
            "cross-partner redemptions checked on every node in {:?}",
            started.elapsed()
        );
        Ok(())
    })
}

#[test]
fn double_spend_races_certify_at_most_one_order() -> Result<()> {
    const ROUNDS: usize = 50;
    const LOT: Points = 100;
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let started = Instant::now();
        let ids: Vec<PartnerId> = ALL.iter().map(|&i| c.partner_id(i)).collect();

        // A fresh member per round (a split vote locks the contested seq for good), each with one lot.
        let members: Vec<Member> = (0..ROUNDS).map(|_| Member::new()).collect();
        let mut lots = Vec::new();
        for (r, m) in members.iter().enumerate() {
            lots.push(issue(c, r % 4, m.id, LOT, None)?.0);
        }
        c.wait_converged(&ALL, REPLICATE)?;

        let clients: Vec<_> = ALL.iter().map(|&i| c.client(i)).collect();
        let mut winners: Vec<Option<(usize, Hash)>> = Vec::new();
        let mut loser_codes: BTreeMap<String, usize> = BTreeMap::new();
        for (r, m) in members.iter().enumerate() {
            // Every ordered pair of distinct partners comes up.
            let pa = r % 4;
            let pb = (pa + 1 + (r / 4) % 3) % 4;
            // Together the two orders overspend the lot; each alone fits.
            let a = m.order(0, ids[pa], &[(lots[r], 60)]);
            let b = m.order(0, ids[pb], &[(lots[r], 70)]);
            let orders = [(pa, a), (pb, b)];
            let barrier = Barrier::new(orders.len());
            let results: Vec<Result<RedeemResponse, ClientError>> = std::thread::scope(|s| {
                let handles: Vec<_> = orders
                    .iter()
                    .map(|(p, o)| {
                        let (client, barrier, token) = (&clients[*p], &barrier, order_token(o));
                        s.spawn(move || {
                            barrier.wait();
                            client.redeem(&token)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(ClientError::Transport {
                                url: String::new(),
                                reason: "redeem thread panicked".into(),
                            })
                        })
                    })
                    .collect()
            });

            let mut winner = None;
            for (k, res) in results.into_iter().enumerate() {
                let (p, o) = &orders[k];
                match res {
                    Ok(receipt) => {
                        ensure!(
                            winner.is_none(),
                            "round {r}: both orders for seq 0 were certified"
                        );
                        ensure!(
                            receipt.order_id == o.order.id() && receipt.entry.partner == ids[*p],
                            "round {r}: receipt {receipt:?}"
                        );
                        winner = Some((k, receipt.order_id));
                    }
                    // The loser is refused: the voters already voted for the other order, or already
                    // applied its certificate.
                    Err(e) if is_code(&e, "conflict") || is_code(&e, "stale_seq") => {
                        *loser_codes
                            .entry(e.code().unwrap_or_default().to_string())
                            .or_default() += 1;
                    }
                    Err(e) => bail!("round {r}: the order at partner {p} failed unexpectedly: {e}"),
                }
            }

            // The member's balance is the same everywhere: one spend, or none after a split vote.
            match winner {
                Some((k, _)) => {
                    let spent = orders[k].1.order.points;
                    wait_balance_everywhere(c, &ALL, &m.id, LOT - spent, 1)?;
                }
                None => {
                    wait_balance_everywhere(c, &ALL, &m.id, LOT, 0)?;
                }
            }
            winners.push(winner);
        }

        // At most one certificate for each (member, seq) on any node, and exactly the winner's.
        c.wait_converged(&ALL, REPLICATE)?;
        let mut reference = None;
        for i in ALL {
            let certs = certificates(c, i)?;
            for (r, m) in members.iter().enumerate() {
                let held: Vec<Hash> = certs
                    .get(&(m.id, 0))
                    .map(|v| v.iter().map(|x| x.order).collect())
                    .unwrap_or_default();
                ensure!(
                    held.len() <= 1,
                    "round {r}: node {i} holds {} certificates for seq 0",
                    held.len()
                );
                let want: Vec<Hash> = winners[r].iter().map(|(_, id)| *id).collect();
                ensure!(held == want, "round {r}: node {i} holds certificates {held:?}, the redeemers reported {want:?}");
                let h = c.client(i).history(&m.id)?;
                let redeems = h
                    .items
                    .iter()
                    .filter(|x| x.kind == HistoryKind::Redeem)
                    .count();
                ensure!(
                    redeems == want.len(),
                    "round {r}: node {i} shows {redeems} redemptions"
                );
            }
            ensure!(
                certs.keys().all(|(_, seq)| *seq == 0),
                "a certificate for a seq nobody signed"
            );
            match &reference {
                None => reference = Some(certs),
                Some(first) => ensure!(
                    *first == certs,
                    "node {i} holds other certificates than node 0"
                ),
            }
        }
        let won = winners.iter().filter(|w| w.is_some()).count();
        eprintln!(
            "{ROUNDS} double-spend races in {:?}: {won} certified one order, {} split (seq locked, nothing spent); losers refused with {loser_codes:?}",
            started.elapsed(),
            ROUNDS - won
        );
        ensure!(won > 0, "no race produced a certificate at all");
        Ok(())
    })
}

#[test]
fn refused_orders_change_nothing() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let started = Instant::now();
        let ids: Vec<PartnerId> = ALL.iter().map(|&i| c.partner_id(i)).collect();
        let (x, y) = (Member::new(), Member::new());
        let (lot_x, _) = issue(c, 0, x.id, 50, None)?;
        let (lot_y, _) = issue(c, 1, y.id, 40, None)?;
        // A lot that expires a second after it is issued (the issuer's `expires_in`).
        let (lot_e, expires_at) = issue(c, 1, x.id, 30, Some(1))?;
        c.wait_converged(&ALL, REPLICATE)?;
        // Poll until every node's clock (and ours, which signs the order time) is past the expiry.
        wait_for(
            "the short-lived lot to expire everywhere",
            Duration::from_secs(10),
            || {
                for i in ALL {
                    let b = c.client(i).balance(&x.id)?;
                    if b.as_of < expires_at
                        || b.lots.iter().any(|l| l.lot == lot_e)
                        || b.available != 50
                    {
                        return Ok(None);
                    }
                }
                Ok((SystemClock.now() >= expires_at).then_some(()))
            },
        )?;
        let h = c.client(2).history(&x.id)?;
        ensure!(
            h.items
                .iter()
                .any(|i| i.kind == HistoryKind::Expire && i.record == lot_e && i.points == 30),
            "history: {h:?}"
        );

        let before = snapshot(c, &ALL, &[x.id, y.id])?;
        let at = 2;
        let client = c.client(at);
        let submit = |o: &SignedOrder| client.redeem(&order_token(o));

        let overspend = x.order(0, ids[at], &[(lot_x, 60)]);
        expect_error(
            "overspend",
            submit(&overspend),
            422,
            "insufficient_remaining",
            "has 50 points left, the order takes 60",
        )?;
        // The same through the CLI: a one-line reason on stderr and a failure status.
        let out = c.cli(
            at,
            &[
                "partner",
                "submit-redeem",
                "--order",
                &order_token(&overspend),
            ],
        )?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && err.contains("has 50 points left, the order takes 60"),
            "CLI overspend: {err}"
        );

        let expired = x.order(0, ids[at], &[(lot_e, 10)]);
        ensure!(expired.order.time >= expires_at);
        expect_error(
            "expired lot",
            submit(&expired),
            422,
            "lot_expired",
            &format!("lot {lot_e} expired at {expires_at}"),
        )?;

        let foreign = x.order(0, ids[at], &[(lot_y, 10)]);
        expect_error(
            "another member's lot",
            submit(&foreign),
            422,
            "lot_of_another_member",
            &format!("belongs to {}", y.id),
        )?;

        // X's order signed with Y's key; and X's signature over other terms than the order's.
        let mut forged = x.order(0, ids[at], &[(lot_x, 10)]);
        forged.signature = forged.order.clone().sign(&y.key).signature;
        expect_error(
            "forged signature",
            submit(&forged),
            422,
            "bad_member_signature",
            "does not verify",
        )?;
        let mut altered = x.order(0, ids[at], &[(lot_x, 10)]);
        altered.order.lots[0].points = 50;
        altered.order.points = 50;
        expect_error(
            "altered order",
            submit(&altered),
            422,
            "bad_member_signature",
            "does not verify",
        )?;

        let after = snapshot(c, &ALL, &[x.id, y.id])?;
        ensure!(
            before == after,
            "a refused order changed something:\nbefore {before:?}\nafter {after:?}"
        );

        // No refused order took the sequence number: X's valid order at seq 0 still goes through.
        let ok = x.order(0, ids[at], &[(lot_x, 50)]);
        let r = submit(&ok).context("the valid order after the refusals")?;
        ensure!(r.points == 50 && r.entry.partner == ids[at]);
        wait_balance_everywhere(c, &ALL, &x.id, 0, 1)?;
        wait_balance_everywhere(c, &ALL, &y.id, 40, 0)?;
        eprintln!("refusals checked in {:?}", started.elapsed());
        Ok(())
    })
}

#[test]
fn one_node_down_redeems_two_down_no_quorum() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let started = Instant::now();
        let ids: Vec<PartnerId> = ALL.iter().map(|&i| c.partner_id(i)).collect();
        let vote_timeout = Duration::from_millis(c.nodes[0].settings.vote_timeout_ms);

        // Five members, lots issued by partner 3 (soon stopped) and partner 0.
        let members: Vec<Member> = (0..5).map(|_| Member::new()).collect();
        let mut lots = Vec::new();
        for (k, m) in members.iter().enumerate() {
            lots.push(issue(c, if k % 2 == 0 { 3 } else { 0 }, m.id, 100, None)?.0);
        }
        c.wait_converged(&ALL, REPLICATE)?;

        // Partner 3 stops: redemptions at each other partner still complete, with 3 votes.
        c.stop(3)?;
        let live = [0, 1, 2];
        for (k, at) in live.into_iter().enumerate() {
            let o = members[k].order(0, ids[at], &[(lots[k], 25)]);
            let r = c
                .client(at)
                .redeem(&order_token(&o))
                .with_context(|| format!("redeeming at partner {at} with partner 3 stopped"))?;
            ensure!(
                r.votes == 3 && r.cert.votes.iter().all(|v| v.partner != ids[3]),
                "certified by {:?}",
                r.cert.votes
            );
        }
        for m in &members[..3] {
            wait_balance_everywhere(c, &live, &m.id, 75, 1)?;
        }
        eprintln!(
            "three redemptions with partner 3 stopped after {:?}",
            started.elapsed()
        );

        // Partner 2 stops too: two of four cannot certify. Fails within the vote timeout, via the API
        // and via the CLI, and nothing changes.
        c.stop(2)?;
        let live = [0, 1];
        let stuck: Vec<usize> = vec![3, 4];
        let before = snapshot(
            c,
            &live,
            &stuck.iter().map(|&k| members[k].id).collect::<Vec<_>>(),
        )?;
        let bound = vote_timeout + Duration::from_secs(10);

        let o3 = members[3].order(0, ids[0], &[(lots[3], 40)]);
        let t = Instant::now();
        let msg = expect_error(
            "two partners stopped",
            c.client(0).redeem(&order_token(&o3)),
            503,
            "no_quorum",
            "no quorum: 2 of 3 votes",
        )?;
        let took = t.elapsed();
        ensure!(took <= bound, "the API took {took:?} to give up");
        eprintln!("API with two partners stopped, after {took:?}: {msg}");

        let o4 = members[4].order(0, ids[1], &[(lots[4], 40)]);
        let t = Instant::now();
        let out = c.cli(
            1,
            &["partner", "submit-redeem", "--order", &order_token(&o4)],
        )?;
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        ensure!(
            !out.status.success() && err.contains("no quorum: 2 of 3 votes"),
            "CLI with two partners stopped: {err}"
        );
        ensure!(took <= bound, "the CLI took {took:?} to give up");
        eprintln!(
            "CLI with two partners stopped, after {took:?}: {}",
            err.trim()
        );

        let after = snapshot(
            c,
            &live,
            &stuck.iter().map(|&k| members[k].id).collect::<Vec<_>>(),
        )?;
        ensure!(
            before == after,
            "a failed redemption changed something:\nbefore {before:?}\nafter {after:?}"
        );

        // Both come back: the logs converge with no certificate for the failed orders, and the same
        // order, submitted again, now completes.
        c.restart(2)?;
        c.restart(3)?;
        c.wait_connected(&ALL, REPLICATE)?;
        c.wait_converged(&ALL, REPLICATE)?;
        for &k in &stuck {
            wait_balance_everywhere(c, &ALL, &members[k].id, 100, 0)?;
        }
        for m in &members[..3] {
            wait_balance_everywhere(c, &ALL, &m.id, 75, 1)?;
        }
        for i in ALL {
            let certs = certificates(c, i)?;
            ensure!(
                certs.len() == 3
                    && stuck
                        .iter()
                        .all(|&k| !certs.contains_key(&(members[k].id, 0))),
                "node {i} holds certificates {certs:?}"
            );
        }
        let r = c
            .client(0)
            .redeem(&order_token(&o3))
            .context("the same order once the partners are back")?;
        ensure!(r.order_id == o3.order.id());
        wait_balance_everywhere(c, &ALL, &members[3].id, 60, 1)?;
        eprintln!("quorum loss checked in {:?}", started.elapsed());
        Ok(())
    })
}

/// A counter from a node's Prometheus `/metrics` (raw HTTP: the client speaks JSON only).
fn metric(c: &Cluster, i: usize, name: &str) -> Result<u64> {
    let addr = c
        .url(i)
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (status, text) = raw_http(&addr, "GET", "/metrics", &[], b"")?;
    ensure!(status == 200, "node {i}'s /metrics answered HTTP {status}");
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .with_context(|| format!("no {name} in node {i}'s metrics"))?;
    Ok(value.trim().parse()?)
}

#[test]
fn a_redemption_in_flight_survives_the_redeemers_restart() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let ids: Vec<PartnerId> = ALL.iter().map(|&i| c.partner_id(i)).collect();
        let m = Member::new();
        let (lot, _) = issue(c, 3, m.id, 100, None)?;
        c.wait_converged(&ALL, REPLICATE)?;
        let pid = |c: &Cluster, i: usize| -> Result<u32> {
            c.nodes[i]
                .child
                .as_ref()
                .map(|ch| ch.id())
                .context("node not running")
        };

        // Partners 0 and 1 freeze: partner 2 gets its own vote and partner 3's and waits for a third.
        for i in [0, 1] {
            signal(pid(c, i)?, "STOP")?;
        }
        let voted_before = metric(c, 3, "coalition_votes_given_total")?;
        let token = order_token(&m.order(0, ids[2], &[(lot, 30)]));
        let client = c.client(2);
        let submit = std::thread::spawn(move || client.redeem(&token));
        // Partner 2 stores the order as in flight (synced) before it asks anyone, so once partner 3
        // has voted the order is on partner 2's disk. Then partner 2 dies mid-redemption.
        wait_for("partner 3 to vote", REPLICATE, || {
            Ok((metric(c, 3, "coalition_votes_given_total")? > voted_before).then_some(()))
        })?;
        c.kill9(2)?;
        let answered = submit
            .join()
            .map_err(|_| anyhow::anyhow!("submit thread panicked"))?;
        ensure!(
            answered.is_err(),
            "the request answered although its node was killed: {answered:?}"
        );
        for i in [0, 1] {
            signal(pid(c, i)?, "CONT")?;
        }

        // After the restart the node completes the order by itself; nobody resubmits it.
        c.restart(2)?;
        wait_balance_everywhere(c, &ALL, &m.id, 70, 1)?;
        for i in ALL {
            let certs = certificates(c, i)?;
            let n = certs.get(&(m.id, 0)).map(|v| v.len()).unwrap_or(0);
            ensure!(n == 1, "node {i} holds {n} certificates for the order");
        }
        let log = std::fs::read_to_string(&c.nodes[2].log)?;
        ensure!(
            log.contains("in-flight redemption certified"),
            "partner 2's log does not say it completed the in-flight order"
        );
        Ok(())
    })
}

#[test]
fn one_order_submitted_many_times_at_once_spends_once() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let ids: Vec<PartnerId> = ALL.iter().map(|&i| c.partner_id(i)).collect();
        let m = Member::new();
        let (lot, _) = issue(c, 0, m.id, 100, None)?;
        c.wait_converged(&ALL, REPLICATE)?;
        let token = order_token(&m.order(0, ids[2], &[(lot, 30)]));

        // Four tills submit the same token at the same moment: each gets the receipt or a retryable
        // 503, none hangs, and the points move once.
        let barrier = std::sync::Arc::new(Barrier::new(4));
        let answers: Vec<_> = (0..4)
            .map(|_| {
                let (client, token, barrier) = (c.client(2), token.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    client.redeem(&token)
                })
            })
            .collect();
        let mut receipts = 0;
        for a in answers {
            match a
                .join()
                .map_err(|_| anyhow::anyhow!("submit thread panicked"))?
            {
                Ok(_) => receipts += 1,
                Err(e) if is_code(&e, "unavailable") => {}
                Err(e) => bail!("a concurrent submission of the same order failed: {e}"),
            }
        }
        ensure!(receipts >= 1, "no submission got the receipt");
        let again = c
            .client(2)
            .redeem(&token)
            .context("resubmitting the token afterwards")?;
        ensure!(
            again.entry.partner == ids[2],
            "the receipt names {:?}",
            again.entry.partner
        );
        wait_balance_everywhere(c, &ALL, &m.id, 70, 1)?;
        for i in ALL {
            let n = certificates(c, i)?
                .get(&(m.id, 0))
                .map(|v| v.len())
                .unwrap_or(0);
            ensure!(n == 1, "node {i} holds {n} certificates for the order");
        }
        Ok(())
    })
}

/// An honest member who runs `member redeem` again after a "no quorum" is not locked out: the CLI
/// keeps the order it signed next to the wallet and resubmits that same order (a new one at the same
/// sequence number would split the voters for good), and a different amount is refused while the
/// first is pending.
#[test]
fn retrying_member_redeem_after_no_quorum_resubmits_the_same_order() -> Result<()> {
    let mut c = Cluster::start(4, LONG_EPOCH_SECS)?;
    logged(&mut c, |c| {
        c.wait_connected(&ALL, REPLICATE)?;
        let w = c
            .dir
            .path()
            .join("carol.wallet")
            .to_string_lossy()
            .to_string();
        let v = c.wallet_json(0, PASS, &["member", "new", "--wallet", &w])?;
        let carol: MemberId = v["member"].as_str().context("member id")?.parse()?;
        issue(c, 1, carol, 100, None)?;
        c.wait_converged(&ALL, REPLICATE)?;

        // Two of four stopped: node 0 and node 1 vote, one short of a quorum.
        c.stop(2)?;
        c.stop(3)?;
        let redeem = |c: &Cluster, points: &str| {
            c.wallet_cli(
                0,
                PASS,
                &[
                    "member", "redeem", "--wallet", &w, "--points", points, "--wait", "0",
                ],
            )
        };
        let first = redeem(c, "30")?;
        let err = String::from_utf8_lossy(&first.stderr).to_string();
        ensure!(
            !first.status.success() && err.contains("no quorum") && err.contains("kept in"),
            "the first redeem: {err}"
        );
        let kept = format!("{w}.pending");
        let token = std::fs::read_to_string(&kept)
            .with_context(|| format!("no pending order at {kept}"))?;
        let pending = coalition_client::order::parse_order_token(token.trim())?;

        // Another amount while it is pending: refused before anything is signed.
        let other = redeem(c, "31")?;
        let err = String::from_utf8_lossy(&other.stderr).to_string();
        ensure!(
            !other.status.success() && err.contains("earlier redemption of 30 points"),
            "a different amount while one is pending: {err}"
        );

        // The partners are back: the same command finishes the same order.
        c.restart(2)?;
        c.restart(3)?;
        c.wait_connected(&ALL, REPLICATE)?;
        let v = c.wallet_json(
            0,
            PASS,
            &["member", "redeem", "--wallet", &w, "--points", "30"],
        )?;
        let r: RedeemResponse = serde_json::from_value(v).context("parsing the receipt")?;
        ensure!(
            r.order_id == pending.order.id(),
            "certified order {}, not the pending {}",
            r.order_id,
            pending.order.id()
        );
        ensure!(
            !std::path::Path::new(&kept).exists(),
            "the pending order was not forgotten after its certificate"
        );
        wait_balance_everywhere(c, &ALL, &carol, 70, 1)?;

        // And the member goes on: the next redemption is a new order at the next number.
        let v = c.wallet_json(
            0,
            PASS,
            &["member", "redeem", "--wallet", &w, "--points", "5"],
        )?;
        let r: RedeemResponse = serde_json::from_value(v).context("parsing the receipt")?;
        ensure!(
            r.cert.order.order.member_seq == 1,
            "the next redemption used sequence {}",
            r.cert.order.order.member_seq
        );
        wait_balance_everywhere(c, &ALL, &carol, 65, 2).map(|_| ())
    })
}
