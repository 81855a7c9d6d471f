//! Rejoining after a start (docs/protocol.md, "Rejoining after a start"). Before this node signs
//! anything, an entry of its own log, a vote or a checkpoint, it confirms with partners that none
//! of them holds more of its own log or a vote of its own that its store lacks, and that no other
//! node runs with its key. Its own signed entries and votes verify, so a store that lost its tail
//! (a damaged write-ahead log, an old backup) is refilled from partners. It stops only on what one
//! dishonest partner cannot fake: a second entry signed by its own key for a position of its log,
//! or `f + 1` partners that keep seeing another node with its key.

use crate::node::Node;
use crate::p2p::{HeadAnnouncement, Request, Response, HELLO_EVERY, HELLO_LIVE};
use crate::sync::Replicator;
use crate::writer::VoteRestore;
use coalition_core::genesis::Genesis;
use coalition_core::log::SignatureChecked;
use coalition_core::record::PartnerId;
use coalition_core::state::LedgerView;
use futures::future::join_all;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often partners are asked again while some have not confirmed.
const POLL: Duration = Duration::from_millis(300);
/// Longest one partner's check may take; partners are checked at once, so one that never answers
/// delays the others by this much at most.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// A run with our key that partners keep seeing this long is live: we stop. Longer than a hello
/// is remembered, so a run that was just killed is not mistaken for one.
const LIVE_ELSEWHERE_FOR: Duration =
    Duration::from_secs(HELLO_LIVE.as_secs() + 2 * HELLO_EVERY.as_secs());
/// Once enough partners confirmed, the node waits for every log to reach what they held, so
/// that certificates carrying its votes are applied before it votes again; it gives up waiting
/// only when no log has moved for this long (what is left cannot be fetched: an equivocator's
/// refused entries, say).
const CATCH_UP_STALLED: Duration = Duration::from_secs(20);
/// How often waiting is reported.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long after the start the node waits for every partner, not only `q - 1` of them: a vote of
/// ours is held only by the redeemer that gathered it, so each partner asked is one more chance to
/// get back a vote the store lost. Partners that are up connect well within this.
const ALL_PARTNERS_FOR: Duration = Duration::from_secs(3);

/// Partners other than us that must confirm: one fewer than a quorum (we are the last of it), and
/// none in a coalition of one.
pub fn confirmations_needed(genesis: &Genesis) -> usize {
    genesis
        .quorum()
        .saturating_sub(1)
        .min(genesis.n().saturating_sub(1))
}

/// Why the node must not rejoin.
#[derive(Debug, thiserror::Error)]
pub enum RejoinError {
    /// Another node with our key is connected to partners.
    #[error(
        "another node with this partner's key is running: partners {peers} have seen it \
         connected for {secs} s. Two nodes with one key would sign two histories; this one \
         stops. Stop the other node first (see \"One key, one node\" in docs/operating.md)"
    )]
    LiveElsewhere {
        /// The partners that see it.
        peers: String,
        /// For how long.
        secs: u64,
    },
    /// A partner holds an entry signed by our key at a position where our store holds another.
    #[error(
        "partner {peer} holds an entry signed by this node's key at position {seq} of its own log \
         that differs from the one in this store: the key has signed two histories (an earlier \
         run on a damaged or older store appended again). The node stops (see \"A damaged \
         database\" in docs/operating.md)"
    )]
    Diverged {
        /// The partner.
        peer: String,
        /// The position.
        seq: u64,
    },
}

/// The rejoin task: confirms with partners, then lets the writer sign. Returns only if the node
/// must stop (the reason is logged), so the service stops with it.
pub async fn run(node: Arc<Node>, replicator: Replicator) {
    let mut rejoin = Rejoin::new(node.clone(), replicator);
    if let Err(e) = rejoin.confirm_all().await {
        tracing::error!(error = %e, "cannot rejoin the coalition; the node stops");
        return;
    }
    rejoin.catch_up().await;
    if let Err(e) = node.writer().open().await {
        tracing::error!(error = %e, "cannot open the ledger writer");
        return;
    }
    let partners: Vec<String> = rejoin.confirmed.keys().map(|p| node.name_of(p)).collect();
    tracing::info!(
        confirmed_by = ?partners,
        own_entries_restored = rejoin.entries_restored,
        votes_restored = rejoin.votes.restored,
        "rejoined: no partner holds more of this node's log or votes; signing from now on"
    );
    std::future::pending::<()>().await
}

/// What one partner's check found.
enum Check {
    /// The partner confirms: its heads, and what we took back from it.
    Confirmed {
        heads: Vec<HeadAnnouncement>,
        entries_restored: u64,
        votes: VoteRestore,
    },
    /// It sees another run with our key.
    LiveElsewhere,
    /// It holds, signed by us, another entry at `seq` than our store.
    Diverged { seq: u64 },
    /// Not yet: no answer, our log not level with its copy yet, or a claim it does not back.
    /// `hello` is whether it said hello without seeing another run.
    NotYet { hello: bool, why: String },
}

struct Rejoin {
    node: Arc<Node>,
    replicator: Replicator,
    needed: usize,
    /// Partners that confirmed, with the heads they held then.
    confirmed: BTreeMap<PartnerId, Vec<HeadAnnouncement>>,
    /// Since when each partner says another run with our key is live.
    elsewhere: BTreeMap<PartnerId, Instant>,
    entries_restored: u64,
    votes: VoteRestore,
}

impl Rejoin {
    fn new(node: Arc<Node>, replicator: Replicator) -> Rejoin {
        let needed = confirmations_needed(node.genesis());
        Rejoin {
            node,
            replicator,
            needed,
            confirmed: BTreeMap::new(),
            elsewhere: BTreeMap::new(),
            entries_restored: 0,
            votes: VoteRestore::default(),
        }
    }

    /// Checks every connected partner, all at once, until all have confirmed, or `needed` have
    /// and [`ALL_PARTNERS_FOR`] has passed.
    async fn confirm_all(&mut self) -> Result<(), RejoinError> {
        let started = Instant::now();
        let genesis = self.node.genesis().clone();
        let others = genesis.n().saturating_sub(1);
        // One dishonest partner must not be able to stop us by saying so.
        let witnesses = genesis.f().saturating_add(1).min(others.max(1));
        let needed = self.needed;
        let mut reported = Instant::now();
        loop {
            let peers: Vec<PartnerId> = self
                .node
                .net()
                .connected_peers()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !self.confirmed.contains_key(p))
                .collect();
            let checks = peers.iter().map(|&peer| {
                let (node, replicator) = (self.node.clone(), self.replicator.clone());
                async move {
                    let checked =
                        tokio::time::timeout(CHECK_TIMEOUT, check(&node, &replicator, peer));
                    let outcome = checked.await.unwrap_or_else(|_| Check::NotYet {
                        hello: false,
                        why: "no answer in time".into(),
                    });
                    (peer, outcome)
                }
            });
            for (peer, outcome) in join_all(checks).await {
                let name = self.node.name_of(&peer);
                match outcome {
                    Check::Confirmed {
                        heads,
                        entries_restored,
                        votes,
                    } => {
                        self.elsewhere.remove(&peer);
                        self.entries_restored += entries_restored;
                        self.votes.restored += votes.restored;
                        self.votes.held += votes.held;
                        self.votes.invalid += votes.invalid;
                        self.votes.conflicting += votes.conflicting;
                        self.confirmed.insert(peer, heads);
                    }
                    Check::LiveElsewhere => {
                        let since = *self.elsewhere.entry(peer).or_insert_with(Instant::now);
                        tracing::warn!(partner = %name, secs = since.elapsed().as_secs(),
                            "a partner sees another node with this partner's key");
                    }
                    Check::Diverged { seq } => {
                        return Err(RejoinError::Diverged { peer: name, seq });
                    }
                    Check::NotYet { hello, why } => {
                        if hello {
                            self.elsewhere.remove(&peer);
                        }
                        tracing::debug!(partner = %name, %why, "partner has not confirmed yet");
                    }
                }
            }
            let long: Vec<String> = self
                .elsewhere
                .iter()
                .filter(|(_, since)| since.elapsed() >= LIVE_ELSEWHERE_FOR)
                .map(|(p, _)| self.node.name_of(p))
                .collect();
            if long.len() >= witnesses {
                return Err(RejoinError::LiveElsewhere {
                    peers: long.join(", "),
                    secs: LIVE_ELSEWHERE_FOR.as_secs(),
                });
            }
            let confirmed = self.confirmed.len();
            if confirmed >= others || (confirmed >= needed && started.elapsed() >= ALL_PARTNERS_FOR)
            {
                return Ok(());
            }
            if reported.elapsed() >= REPORT_EVERY {
                reported = Instant::now();
                tracing::info!(
                    confirmed,
                    needed,
                    "waiting for partners to confirm this node's log and votes before it signs anything"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every log is as long here as the confirming partners held it (certificates
    /// that carry our votes are then applied, and the vote rule refuses their spends again), and
    /// no entry of our own log is parked. Gives up on the other logs once none has moved for
    /// [`CATCH_UP_STALLED`]; never on our own log's parked entries, since appending would sign
    /// over them.
    async fn catch_up(&self) {
        let me = self.node.me();
        let mut best_gap = u64::MAX;
        let mut moved = Instant::now();
        let mut reported = Instant::now();
        loop {
            let mut gap = 0u64;
            for (peer, heads) in &self.confirmed {
                let mut behind = false;
                for h in heads
                    .iter()
                    .filter(|h| self.node.genesis().is_partner(&h.partner))
                {
                    let ours = log_size(&self.node, h.partner).await;
                    if ours < h.size {
                        behind = true;
                        gap = gap.saturating_add(h.size - ours);
                    }
                }
                if behind {
                    self.replicator.on_heads(*peer, heads.clone()).await;
                }
            }
            let (_, parked) = self.node.writer().pending().await;
            let own_parked = parked.iter().any(|(p, _, _)| *p == me);
            if gap < best_gap {
                best_gap = gap;
                moved = Instant::now();
            }
            if !own_parked && (gap == 0 || moved.elapsed() >= CATCH_UP_STALLED) {
                if gap > 0 {
                    tracing::warn!(
                        entries_missing = gap,
                        "some logs are still behind what partners held at the start and have not \
                         moved for {} s; signing anyway",
                        CATCH_UP_STALLED.as_secs()
                    );
                }
                return;
            }
            if reported.elapsed() >= REPORT_EVERY {
                reported = Instant::now();
                tracing::info!(
                    entries_missing = gap,
                    own_entries_parked = own_parked,
                    "catching up with partners before signing"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One partner's check: hello, our own log, our votes it holds.
async fn check(node: &Arc<Node>, replicator: &Replicator, peer: PartnerId) -> Check {
    let me = node.me();
    let net = node.net();
    let not_yet = |hello: bool, why: String| Check::NotYet { hello, why };

    // No other run with our key.
    let hello = Request::Hello {
        instance: net.instance(),
    };
    match net.request(peer, hello).await {
        Ok(Response::Hello {
            live_elsewhere: true,
        }) => return Check::LiveElsewhere,
        Ok(Response::Hello { .. }) => {}
        other => return not_yet(false, format!("hello: {}", answer_kind(&other))),
    }

    // Our own log: at least as long as the partner's copy, and the same where both have it.
    let heads = match net.request(peer, Request::GetHeads).await {
        Ok(Response::Heads(heads)) => heads,
        other => return not_yet(true, format!("heads: {}", answer_kind(&other))),
    };
    let mut entries_restored = 0;
    if let Some(theirs) = heads.iter().find(|h| h.partner == me).cloned() {
        let before = own_size(node).await;
        if theirs.size > before {
            tracing::warn!(partner = %node.name_of(&peer), theirs = theirs.size, ours = before,
                "a partner holds more of this node's own log than its store: fetching it back");
            replicator.fetch_log(peer, me).await;
            let after = own_size(node).await;
            entries_restored = after.saturating_sub(before);
            if after < theirs.size {
                // Parked on other logs, fetched by someone else now, or a claim the partner
                // does not back with entries: ask again.
                return not_yet(
                    true,
                    format!("our own log: {after} entries here, {} there", theirs.size),
                );
            }
        }
        if let Some(seq) = theirs.size.checked_sub(1) {
            let ours = node
                .blocking(move |s| s.entries(&me, seq, 1))
                .await
                .ok()
                .and_then(|e| e.into_iter().next())
                .map(|e| e.id());
            if ours != Some(theirs.last) {
                return match signed_by_us_at(node, peer, seq).await {
                    Some(id) if Some(id) != ours => Check::Diverged { seq },
                    _ => not_yet(true, format!("its head of our log at {seq} is not backed")),
                };
            }
        }
    }

    // Our votes the partner holds for orders it could not certify.
    let held = match net.request(peer, Request::GetHeldVotes { voter: me }).await {
        Ok(Response::HeldVotes(held)) => held,
        other => return not_yet(true, format!("held votes: {}", answer_kind(&other))),
    };
    let mut votes = VoteRestore::default();
    if !held.is_empty() {
        match node.writer().restore_votes(held).await {
            Ok(done) => {
                if done.restored > 0 {
                    tracing::warn!(partner = %node.name_of(&peer), restored = done.restored,
                        "a partner held votes of this node that its store had lost: stored again");
                }
                votes = done;
            }
            Err(e) => return not_yet(true, format!("storing the votes it held: {e}")),
        }
    }
    Check::Confirmed {
        heads,
        entries_restored,
        votes,
    }
}

/// The id of the entry `peer` holds at position `seq` of our log, if it is validly signed by us.
async fn signed_by_us_at(
    node: &Arc<Node>,
    peer: PartnerId,
    seq: u64,
) -> Option<coalition_core::hash::Hash> {
    let me = node.me();
    let req = Request::GetRange {
        partner: me,
        from: seq,
        limit: 1,
    };
    let entry = match node.net().request(peer, req).await {
        Ok(Response::Range { entries }) => entries.into_iter().next()?,
        _ => return None,
    };
    if entry.entry.partner != me || entry.entry.seq != seq {
        return None;
    }
    SignatureChecked::verify(entry).ok().map(|c| c.entry().id())
}

async fn own_size(node: &Arc<Node>) -> u64 {
    log_size(node, node.me()).await
}

/// How many entries of `partner`'s log are here. A failed read is our store's problem, which the
/// verification pass stops the node for; here it reads as an empty log, so a partner's copy is
/// fetched rather than trusted away.
async fn log_size(node: &Arc<Node>, partner: PartnerId) -> u64 {
    node.blocking(move |s| LedgerView::log_head(s, &partner))
        .await
        .map(|h| h.size)
        .unwrap_or(0)
}

fn answer_kind<E: std::fmt::Display>(answer: &Result<Response, E>) -> String {
    match answer {
        Ok(r) => format!("answered {}", r.kind()),
        Err(e) => e.to_string(),
    }
}
