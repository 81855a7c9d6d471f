//! A dishonest genesis partner on the wire. Three honest `coalition-node` processes run; partner 3 is
//! played by this test through the node's own libp2p stack with partner 3's real key, so it is
//! admitted as a peer and can send anything a partner can. It breaks its chain, forges signatures,
//! appends certificates with too few, foreign, duplicate or replayed votes or a forged member signature, serves
//! an entry for an epoch that is already sealed, withholds its votes and checkpoint signatures, and
//! finally equivocates. Each misdeed is refused with its reason (equivocation is kept as a fraud
//! proof) and the honest nodes keep serving, sealing and passing the audit. A second scenario has it
//! gather a quorum for a member's order and sit on the certificate: the member is frozen only until
//! the order's window closes, and the certificate appended late is refused.
//! (Malformed and oversize frames, and keys outside the genesis, are covered in node/tests/p2p.rs.)

use crate::EPOCH_SECS;
use anyhow::{bail, Context, Result};
use coalition_client::order::{order_token, select_lots};
use coalition_client::types::IssueRequest;
use coalition_client::KeyFile;
use coalition_core::clock::{Clock as _, SystemClock};
use coalition_core::crypto::Keypair;
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::record::*;
use coalition_core::refusal::RefusalCode;
use coalition_node::p2p::{
    self, Gossip, HeadAnnouncement, NetEvent, NetworkConfig, NetworkHandle, Refusal, Request,
    Response,
};
use coalition_tests::{check_output, logged, wait_for, Cluster};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BYZ: usize = 3;

fn key_of(cluster: &Cluster, i: usize) -> Result<Keypair> {
    let node = &cluster.nodes[i];
    let dir = node.config.parent().context("config dir")?;
    let path = if node.settings.key_file.is_absolute() {
        node.settings.key_file.clone()
    } else {
        dir.join(&node.settings.key_file)
    };
    let kf: KeyFile = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let secret: [u8; 32] = hex::decode(kf.secret.trim())?
        .try_into()
        .map_err(|_| anyhow::anyhow!("secret is not 32 bytes"))?;
    Ok(Keypair::from_secret_bytes(&secret))
}

/// The dishonest partner's own log: what it serves and extends.
struct ByzLog {
    key: Arc<Keypair>,
    genesis: Genesis,
    entries: Vec<SignedEntry>,
    open_epoch: Epoch,
    /// A record offered to peers as the next entry when they ask for our log (not gossiped), with
    /// the epoch to claim if not the open one. Signed when served, so it always sits at the next
    /// position even after an epoch close was appended meanwhile.
    bait: Option<(Record, Option<Epoch>)>,
    /// Epoch closes wait while misdeeds are built for the next position: a close appended and
    /// gossiped in between would take that position, and the misdeed would then be a second signed
    /// entry there — an equivocation, not the misdeed under test.
    hold_closes: bool,
}

impl ByzLog {
    fn me(&self) -> PartnerId {
        PartnerId(self.key.public())
    }

    /// The next entry of the log carrying `record`, signed, not yet appended.
    fn next(&self, record: Record) -> SignedEntry {
        Entry {
            partner: self.me(),
            seq: self.entries.len() as u64,
            prev: self.entries.last().map(|e| e.id()).unwrap_or(Hash::ZERO),
            epoch: self.open_epoch,
            time: SystemClock
                .now()
                .max(self.entries.last().map(|e| e.entry.time).unwrap_or(0)),
            record,
        }
        .sign(&self.key)
    }

    fn bait_entry(&self) -> Option<SignedEntry> {
        let (record, epoch) = self.bait.clone()?;
        let mut e = self.next(record);
        if let Some(epoch) = epoch {
            e.entry.epoch = epoch;
            e = e.entry.sign(&self.key);
        }
        Some(e)
    }

    fn push(&mut self, e: SignedEntry) {
        if matches!(e.entry.record, Record::EpochClose(_)) {
            self.open_epoch += 1;
        }
        self.entries.push(e);
    }
}

struct Byzantine {
    log: Arc<Mutex<ByzLog>>,
    net: NetworkHandle,
    rt: tokio::runtime::Runtime,
}

impl Byzantine {
    fn publish(&self, e: SignedEntry) -> Result<()> {
        self.rt.block_on(self.net.publish(Gossip::Entry(e)))?;
        Ok(())
    }

    /// Appends a valid record to our log and gossips it.
    fn append(&self, record: Record) -> Result<SignedEntry> {
        let e = {
            let mut log = self.log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let e = log.next(record);
            log.push(e.clone());
            e
        };
        self.publish(e.clone())?;
        Ok(e)
    }

    fn next(&self, record: Record) -> SignedEntry {
        // A poisoned lock only means another thread panicked; the log itself is intact.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .next(record)
    }

    fn size(&self) -> u64 {
        self.log.lock().map(|l| l.entries.len() as u64).unwrap_or(0)
    }

    fn hold_closes(&self, hold: bool) {
        if let Ok(mut l) = self.log.lock() {
            l.hold_closes = hold;
        }
    }

    fn set_bait(&self, bait: Option<(Record, Option<Epoch>)>) {
        if let Ok(mut l) = self.log.lock() {
            l.bait = bait;
        }
    }
}

/// Plays partner `BYZ`: answers requests from its own log (with the bait, if any), refuses every
/// vote, never signs a checkpoint, and closes its epochs on time so sealing can go on.
fn start_byzantine(cluster: &Cluster, genesis: Genesis) -> Result<Byzantine> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let key = Arc::new(key_of(cluster, BYZ)?);
    let settings = &cluster.nodes[BYZ].settings;
    let config = NetworkConfig::new(
        key.secret_bytes(),
        settings.p2p_listen.clone(),
        settings.peers.clone(),
        Arc::new(genesis.clone()),
    );
    let (net, mut events) = rt.block_on(p2p::spawn(config))?;
    let log = Arc::new(Mutex::new(ByzLog {
        key,
        genesis,
        entries: Vec::new(),
        open_epoch: 0,
        bait: None,
        hold_closes: false,
    }));
    let served = log.clone();
    rt.spawn(async move {
        while let Some(ev) = events.recv().await {
            let NetEvent::Request { req, reply, .. } = ev else {
                continue;
            };
            let answer = {
                let Ok(log) = served.lock() else { break };
                let mut all = log.entries.clone();
                all.extend(log.bait_entry());
                match req {
                    Request::GetHeads => Response::Heads(vec![HeadAnnouncement {
                        partner: log.me(),
                        size: all.len() as u64,
                        last: all.last().map(|e| e.id()).unwrap_or(Hash::ZERO),
                    }]),
                    Request::GetRange {
                        partner,
                        from,
                        limit,
                    } if partner == log.me() => Response::Range {
                        entries: all
                            .into_iter()
                            .skip(from as usize)
                            .take(limit as usize)
                            .collect(),
                    },
                    Request::GetRange { .. } => Response::Range { entries: vec![] },
                    Request::Vote { .. } => Response::Vote(Err(Refusal {
                        code: RefusalCode::Conflict,
                        message: "no vote".into(),
                    })),
                    Request::GetCheckpointSigs { .. } => Response::CheckpointSigs(vec![]),
                    Request::GetHeldVotes { .. } => Response::HeldVotes(vec![]),
                    // The network task answers hellos itself.
                    Request::Hello { .. } => Response::Error {
                        message: "unexpected".into(),
                    },
                }
            };
            let _ = reply.send(answer);
        }
    });
    // Close epochs on time, like an honest partner, so the others can keep sealing.
    let closer = log.clone();
    let closer_net = net.clone();
    rt.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let close = {
                let Ok(mut l) = closer.lock() else { break };
                if l.hold_closes || SystemClock.now() < l.genesis.epoch_end(l.open_epoch) {
                    None
                } else {
                    let epoch = l.open_epoch;
                    let e = l.next(Record::EpochClose(EpochClose { epoch }));
                    l.push(e.clone());
                    Some(e)
                }
            };
            if let Some(e) = close {
                let _ = closer_net.publish(Gossip::Entry(e)).await;
            }
        }
    });
    Ok(Byzantine { log, net, rt })
}

/// Waits until every honest node's log shows a refusal whose reason contains `needle`, written
/// after the byte offsets in `marks`.
fn expect_refused(cluster: &Cluster, marks: &[u64], needle: &str) -> Result<()> {
    for (i, mark) in marks.iter().enumerate() {
        let log = &cluster.nodes[i].log;
        wait_for(
            &format!("node {i} to refuse: {needle}"),
            Duration::from_secs(20),
            || {
                let text = std::fs::read(log)?;
                let new =
                    String::from_utf8_lossy(&text[(*mark as usize).min(text.len())..]).to_string();
                Ok(new.lines().any(|l| l.contains(needle)).then_some(()))
            },
        )?;
    }
    Ok(())
}

fn log_marks(cluster: &Cluster) -> Result<Vec<u64>> {
    (0..BYZ)
        .map(|i| Ok(std::fs::metadata(&cluster.nodes[i].log)?.len()))
        .collect()
}

fn byz_head_everywhere(cluster: &Cluster, byz: PartnerId) -> Result<Vec<u64>> {
    (0..BYZ)
        .map(|i| {
            let s = cluster.client(i).status()?;
            Ok(s.logs
                .iter()
                .find(|l| l.partner == byz)
                .map(|l| l.size)
                .unwrap_or(0))
        })
        .collect()
}

fn balance_everywhere(cluster: &Cluster, m: &MemberId) -> Result<Vec<u64>> {
    (0..BYZ)
        .map(|i| Ok(cluster.client(i).balance(m)?.available))
        .collect()
}

/// Waits until every honest node shows `points` available for `m`.
fn wait_balance_everywhere(cluster: &Cluster, m: &MemberId, points: u64, what: &str) -> Result<()> {
    wait_for(what, Duration::from_secs(20), || {
        Ok(balance_everywhere(cluster, m)?
            .iter()
            .all(|b| *b == points)
            .then_some(()))
    })
}

/// A certificate for `order` with votes by `voters` (any keys), sorted by voter as the rule wants.
fn cert(order: SignedOrder, voters: &[&Keypair]) -> RedeemCert {
    let id = order.order.id();
    let mut votes: Vec<VoteSig> = voters
        .iter()
        .map(|k| {
            let v = Vote::sign(id, k);
            VoteSig {
                partner: v.partner,
                signature: v.signature,
            }
        })
        .collect();
    votes.sort_by_key(|v| v.partner);
    RedeemCert { order, votes }
}

/// An honest issue and a cross-partner redemption among the honest nodes still work.
fn honest_business(cluster: &Cluster, partners: &[PartnerId]) -> Result<()> {
    let member = Keypair::generate();
    let id = MemberId(member.public());
    cluster.client(0).issue(&IssueRequest {
        member: id,
        points: 50,
        reference: None,
        expires_in_secs: Some(3600),
    })?;
    wait_for(
        "the honest issue to replicate",
        Duration::from_secs(20),
        || Ok((cluster.client(1).balance(&id)?.available == 50).then_some(())),
    )?;
    let b = cluster.client(1).balance(&id)?;
    let order = RedeemOrder {
        member: id,
        member_seq: b.next_seq,
        redeemer: partners[1],
        points: 20,
        lots: select_lots(&b.lots, 20, SystemClock.now())?,
        time: SystemClock.now(),
    }
    .sign(&member);
    cluster
        .client(1)
        .redeem(&order_token(&order))
        .context("redemption among honest partners")?;
    wait_for(
        "every honest node to see the redemption",
        Duration::from_secs(20),
        || {
            Ok(balance_everywhere(cluster, &id)?
                .iter()
                .all(|b| *b == 30)
                .then_some(()))
        },
    )
}

#[test]
fn a_dishonest_partner_is_refused_and_the_others_carry_on() -> Result<()> {
    let mut c = Cluster::init(4, EPOCH_SECS)?;
    logged(&mut c, misdeeds)
}

fn misdeeds(c: &mut Cluster) -> Result<()> {
    for i in 0..BYZ {
        c.spawn(i)?;
    }
    for i in 0..BYZ {
        c.wait_healthy(i)?;
    }
    let genesis: Genesis = serde_json::from_str(&std::fs::read_to_string(&c.genesis_path)?)?;
    let partners: Vec<PartnerId> = genesis.partners.iter().map(|p| p.id).collect();
    let byz = start_byzantine(c, genesis)?;
    let me = partners[BYZ];
    for i in 0..BYZ {
        wait_for(
            &format!("node {i} to admit the dishonest partner"),
            Duration::from_secs(30),
            || {
                let s = c.client(i).status()?;
                Ok(s.peers.iter().all(|p| p.connected).then_some(()))
            },
        )?;
    }
    let honest: Vec<Keypair> = (0..BYZ).map(|i| key_of(c, i)).collect::<Result<_>>()?;
    let byz_key = key_of(c, BYZ)?;
    let outsider = Keypair::generate();

    // A valid issue from the dishonest partner is accepted like any other.
    let member = Keypair::generate();
    let m = MemberId(member.public());
    let issue = Issue {
        issuer: me,
        member: m,
        points: 100,
        expires_at: SystemClock.now() + 3600,
        reference: reference_hash("byz 1"),
        time: SystemClock.now(),
    };
    let lot = issue.id();
    byz.append(Record::Issue(issue))?;
    wait_balance_everywhere(c, &m, 100, "the valid issue to be accepted everywhere")?;

    let order = |points: u64, signer: &Keypair| {
        RedeemOrder {
            member: m,
            member_seq: 0,
            redeemer: me,
            points,
            lots: vec![LotSpend { lot, points }],
            time: SystemClock.now(),
        }
        .sign(signer)
    };
    let redeem = |cert: RedeemCert| byz.next(Record::Redeem(cert));

    // Misdeeds by gossip (the network strikes a peer after five; four here).
    byz.hold_closes(true);
    let mut broken = byz.next(Record::Issue(Issue {
        issuer: me,
        member: m,
        points: 5,
        expires_at: SystemClock.now() + 60,
        reference: reference_hash("x"),
        time: SystemClock.now(),
    }));
    broken.entry.prev = Hash([7; 32]);
    let broken = SignedEntry {
        signature: byz_key.sign(&broken.entry.id()),
        entry: broken.entry,
    };
    let mut forged = byz.next(Record::EpochClose(EpochClose { epoch: 99 }));
    forged.signature = outsider.sign(&forged.entry.id());
    let gossiped: Vec<(&str, SignedEntry)> = vec![
        ("prev is", broken),
        ("does not verify", forged),
        (
            "votes, the quorum is",
            redeem(cert(order(40, &member), &[&byz_key, &honest[0]])),
        ),
        (
            "which is not a partner",
            redeem(cert(order(40, &member), &[&byz_key, &honest[0], &outsider])),
        ),
    ];
    for (reason, entry) in gossiped {
        let marks = log_marks(c)?;
        byz.publish(entry)?;
        expect_refused(c, &marks, reason)?;
        assert_eq!(
            byz_head_everywhere(c, me)?,
            vec![byz.size(); BYZ],
            "a refused entry was stored ({reason})"
        );
        assert_eq!(
            balance_everywhere(c, &m)?,
            vec![100; BYZ],
            "a refused entry changed a balance ({reason})"
        );
    }

    // Misdeeds served to peers catching up on our log (no gossip strike).
    // A vote partner 1 really gave, but for another order, replayed into this certificate.
    let replayed = {
        let mut c = cert(order(40, &member), &[&byz_key, &honest[0]]);
        let v = Vote::sign(order(41, &member).order.id(), &honest[1]);
        c.votes.push(VoteSig {
            partner: v.partner,
            signature: v.signature,
        });
        c.votes.sort_by_key(|v| v.partner);
        c
    };
    let served: Vec<(&str, Record)> = vec![
        (
            "two votes from partner",
            Record::Redeem(cert(
                order(40, &member),
                &[&byz_key, &honest[0], &honest[0]],
            )),
        ),
        ("vote by", Record::Redeem(replayed)),
        (
            "signature on the order does not verify",
            Record::Redeem(cert(
                order(40, &outsider),
                &[&byz_key, &honest[0], &honest[1]],
            )),
        ),
    ];
    for (reason, record) in served {
        let marks = log_marks(c)?;
        byz.set_bait(Some((record, None)));
        expect_refused(c, &marks, reason)?;
        byz.set_bait(None);
        assert_eq!(
            balance_everywhere(c, &m)?,
            vec![100; BYZ],
            "a refused entry changed a balance ({reason})"
        );
    }

    byz.hold_closes(false);

    // The honest partners keep serving without the dishonest one's votes, and keep sealing.
    honest_business(c, &partners)?;
    let epoch = c.client(0).status()?.current_epoch;
    for i in 0..BYZ {
        c.wait_sealed(i, epoch, Duration::from_secs(EPOCH_SECS * 10))?;
    }
    // An issue placed in an epoch that is already sealed is refused.
    let late = Record::Issue(Issue {
        issuer: me,
        member: m,
        points: 9,
        expires_at: SystemClock.now() + 60,
        reference: reference_hash("late"),
        time: SystemClock.now(),
    });
    let marks = log_marks(c)?;
    byz.set_bait(Some((late, Some(0))));
    expect_refused(c, &marks, "the log is in epoch")?;
    byz.set_bait(None);
    check_output("audit verify", &c.cli(0, &["audit", "verify"])?)?;

    // Equivocation: two different entries at one position. Kept as a fraud proof; the partner's
    // entries are refused from then on; the others keep serving.
    byz.hold_closes(true);
    let a = byz.next(Record::Issue(Issue {
        issuer: me,
        member: m,
        points: 1,
        expires_at: SystemClock.now() + 60,
        reference: reference_hash("a"),
        time: SystemClock.now(),
    }));
    let b = byz.next(Record::Issue(Issue {
        issuer: me,
        member: m,
        points: 2,
        expires_at: SystemClock.now() + 60,
        reference: reference_hash("b"),
        time: SystemClock.now(),
    }));
    byz.publish(a.clone())?;
    byz.publish(b)?;
    for i in 0..BYZ {
        wait_for(
            &format!("node {i} to hold the fraud proof"),
            Duration::from_secs(30),
            || {
                let s = c.client(i).status()?;
                Ok(s.equivocations
                    .iter()
                    .any(|e| e.partner == me)
                    .then_some(()))
            },
        )?;
    }
    if let Ok(mut l) = byz.log.lock() {
        l.push(a);
    }
    let before = balance_everywhere(c, &m)?;
    let after_fraud = byz.append(Record::Issue(Issue {
        issuer: me,
        member: m,
        points: 500,
        expires_at: SystemClock.now() + 60,
        reference: reference_hash("after"),
        time: SystemClock.now(),
    }))?;
    honest_business(c, &partners)?;
    for i in 0..BYZ {
        let b = c.client(i).balance(&m)?;
        if b.lots
            .iter()
            .any(|l| l.lot == after_fraud.entry.record.id())
        {
            bail!("node {i} accepted an entry of a partner it holds a fraud proof against");
        }
    }
    assert_eq!(balance_everywhere(c, &m)?, before);
    Ok(())
}

/// A redeemer that gathers a quorum and never appends the certificate freezes the member's
/// sequence number only until every partner has closed the epoch after the order's: from then on
/// the honest partners vote for a new order at that number, and the withheld certificate, appended
/// late, is refused everywhere (docs/protocol.md, "Releasing a sequence number").
#[test]
fn a_certificate_the_redeemer_sits_on_freezes_the_member_only_until_its_window_closes() -> Result<()>
{
    // A short allowed skew: the window is the epoch after the order's time plus the skew.
    let mut c = Cluster::init_with(4, EPOCH_SECS, &["--clock-skew-secs", "1"])?;
    logged(&mut c, sit_on_a_certificate)
}

fn sit_on_a_certificate(c: &mut Cluster) -> Result<()> {
    for i in 0..BYZ {
        c.spawn(i)?;
    }
    let genesis: Genesis = serde_json::from_str(&std::fs::read_to_string(&c.genesis_path)?)?;
    let partners: Vec<PartnerId> = genesis.partners.iter().map(|p| p.id).collect();
    let byz = start_byzantine(c, genesis.clone())?;
    for i in 0..BYZ {
        c.wait_ready(i)?;
    }
    let member = Keypair::generate();
    let m = MemberId(member.public());
    let lot = c
        .client(0)
        .issue(&IssueRequest {
            member: m,
            points: 100,
            reference: None,
            expires_in_secs: Some(3600),
        })?
        .lot;
    wait_balance_everywhere(c, &m, 100, "the issue to replicate")?;
    let order = |redeemer: PartnerId, points: u64| {
        RedeemOrder {
            member: m,
            member_seq: 0,
            redeemer,
            points,
            lots: vec![LotSpend { lot, points }],
            time: SystemClock.now(),
        }
        .sign(&member)
    };

    // The dishonest partner gathers every honest vote for its order, and keeps the certificate.
    let withheld = order(partners[BYZ], 30);
    let mut voters = Vec::new();
    for &p in &partners[..BYZ] {
        let request = Request::Vote {
            order: withheld.clone(),
        };
        match byz.rt.block_on(byz.net.request(p, request))? {
            Response::Vote(Ok(v)) => voters.push(v),
            other => bail!("partner {} did not vote: {other:?}", p.short()),
        }
    }
    if voters.len() != BYZ {
        bail!("{} votes, expected {BYZ}", voters.len());
    }

    // The member, at an honest shop meanwhile: every honest partner has voted at this number.
    let blocked = c.client(0).redeem(&order_token(&order(partners[0], 20)));
    match blocked {
        Err(e) if coalition_tests::is_code(&e, "conflict") => {}
        other => bail!("expected a conflict while the certificate is withheld, got {other:?}"),
    }

    // Every partner, the dishonest one included, closes the epoch after the order's.
    let window = coalition_core::cert_window::last_append_epoch(&genesis, withheld.order.time);
    for i in 0..BYZ {
        c.wait_sealed(i, window, Duration::from_secs(30))?;
    }
    let receipt = c
        .client(0)
        .redeem(&order_token(&order(partners[0], 20)))
        .context("a new order once the withheld one can no longer be certified")?;
    if receipt.cert.order.order.member_seq != 0 {
        bail!(
            "the new order is at seq {}",
            receipt.cert.order.order.member_seq
        );
    }
    wait_balance_everywhere(c, &m, 80, "the new redemption everywhere")?;

    // The certificate, appended now, is too late for every honest node, and changes nothing.
    byz.hold_closes(true);
    let marks = log_marks(c)?;
    let late = cert(
        withheld,
        &(0..BYZ)
            .map(|i| key_of(c, i))
            .collect::<Result<Vec<_>>>()?
            .iter()
            .collect::<Vec<_>>(),
    );
    byz.append(Record::Redeem(late))?;
    expect_refused(c, &marks, "later than epoch")?;
    let balances = balance_everywhere(c, &m)?;
    if balances.iter().any(|b| *b != 80) {
        bail!("the late certificate moved points: {balances:?}");
    }
    Ok(())
}
