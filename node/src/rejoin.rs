//! Rejoining after a start (docs/protocol.md, "Rejoining after a start"). Before this node signs
//! anything, an entry of its own log or a vote, it confirms with a quorum's worth of partners that
//! none of them holds more of its own log or a vote of its own that its store lacks, and that no
//! other node runs with its key. Its own signed entries and votes verify, so a store that lost its
//! tail (a damaged write-ahead log, an old backup) is refilled from partners; a store that cannot be
//! refilled, or disagrees with a partner's copy, or a key live in another node, stops the node with
//! the reason, rather than let it sign a second history or a second vote for one spend.

use crate::node::Node;
use crate::p2p::{HeadAnnouncement, Request, Response, HELLO_EVERY, HELLO_LIVE};
use crate::sync::Replicator;
use crate::writer::VoteRestore;
use coalition_core::genesis::Genesis;
use coalition_core::record::PartnerId;
use coalition_core::state::LedgerView;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often partners are asked again while some have not confirmed.
const POLL: Duration = Duration::from_millis(300);
/// A run with our key that a partner keeps seeing this long is live: we stop. Longer than a hello
/// is remembered, so a run that was just killed (whose connection the partner has not yet seen
/// close) is not mistaken for one.
const LIVE_ELSEWHERE_FOR: Duration =
    Duration::from_secs(HELLO_LIVE.as_secs() + 2 * HELLO_EVERY.as_secs());
/// Fetches of our own log from one partner that may fail to bring it level before we stop.
const RESTORE_ATTEMPTS: u32 = 5;
/// How long, once enough partners confirmed, we wait for every log to reach what they hold (so
/// certificates carrying our votes are here before we vote again).
const CATCH_UP: Duration = Duration::from_secs(20);
/// How often the wait for partners is reported.
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
    /// Another node with our key is connected to a partner.
    #[error(
        "another node with this partner's key is running: partner {peer} has seen it connected for \
         {secs} s. Two nodes with one key would sign two histories; this one stops. Stop the other \
         node first (see \"One key, one node\" in docs/operating.md)"
    )]
    LiveElsewhere {
        /// The partner that sees it.
        peer: String,
        /// For how long.
        secs: u64,
    },
    /// A partner holds more of our own log than our store, and it could not be fetched.
    #[error(
        "partner {peer} holds {theirs} entries of this node's own log but this store has {ours} \
         and cannot fetch the rest; the node stops rather than sign entries at positions already \
         signed (see \"A damaged database\" in docs/operating.md)"
    )]
    CannotRestore {
        /// The partner.
        peer: String,
        /// Its copy's length.
        theirs: u64,
        /// Ours.
        ours: u64,
    },
    /// Our own log here and a partner's copy of it differ.
    #[error(
        "this node's own log differs from partner {peer}'s copy at position {seq}; the store does \
         not hold what this node signed, and the node stops (see \"A damaged database\" in \
         docs/operating.md)"
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
    match rejoin.confirm_all().await {
        Ok(()) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot rejoin the coalition; the node stops");
            return;
        }
    }
    rejoin.catch_up().await;
    if let Err(e) = node.writer().open().await {
        tracing::error!(error = %e, "cannot open the ledger writer");
        return;
    }
    let Rejoin {
        entries_restored,
        votes,
        confirmed,
        ..
    } = rejoin;
    let partners: Vec<String> = confirmed.keys().map(|p| node.name_of(p)).collect();
    tracing::info!(
        confirmed_by = ?partners,
        own_entries_restored = entries_restored,
        votes_restored = votes.restored,
        "rejoined: no partner holds more of this node's log or votes; signing from now on"
    );
    std::future::pending::<()>().await
}

struct Rejoin {
    node: Arc<Node>,
    replicator: Replicator,
    needed: usize,
    /// Partners that confirmed, with the heads they held then.
    confirmed: BTreeMap<PartnerId, Vec<HeadAnnouncement>>,
    /// Since when each partner says another run with our key is live.
    elsewhere: BTreeMap<PartnerId, Instant>,
    /// Fetches of our own log from each partner that did not bring it level.
    restore_failures: BTreeMap<PartnerId, u32>,
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
            restore_failures: BTreeMap::new(),
            entries_restored: 0,
            votes: VoteRestore::default(),
        }
    }

    /// Asks every connected partner until all have confirmed, or `needed` have and
    /// [`ALL_PARTNERS_FOR`] has passed.
    async fn confirm_all(&mut self) -> Result<(), RejoinError> {
        let started = Instant::now();
        let others = self.node.genesis().n().saturating_sub(1);
        let needed = self.needed;
        let mut reported = Instant::now();
        let done = |confirmed: usize| {
            confirmed >= others || (confirmed >= needed && started.elapsed() >= ALL_PARTNERS_FOR)
        };
        loop {
            let peers = self.node.net().connected_peers().await.unwrap_or_default();
            for peer in peers {
                if self.confirmed.contains_key(&peer) {
                    continue;
                }
                if let Some(heads) = self.confirm(peer).await? {
                    self.confirmed.insert(peer, heads);
                }
            }
            if done(self.confirmed.len()) {
                return Ok(());
            }
            if reported.elapsed() >= REPORT_EVERY {
                reported = Instant::now();
                tracing::info!(
                    confirmed = self.confirmed.len(),
                    needed = self.needed,
                    "waiting for partners to confirm this node's log and votes before it signs anything"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One partner's confirmation: its heads, or `None` if it cannot confirm yet.
    async fn confirm(
        &mut self,
        peer: PartnerId,
    ) -> Result<Option<Vec<HeadAnnouncement>>, RejoinError> {
        let node = self.node.clone();
        let me = node.me();
        let name = node.name_of(&peer);
        let net = node.net();

        // No other run with our key.
        let hello = Request::Hello {
            instance: net.instance(),
        };
        match net.request(peer, hello).await {
            Ok(Response::Hello { live_elsewhere }) if live_elsewhere => {
                let since = *self.elsewhere.entry(peer).or_insert_with(Instant::now);
                let seen = since.elapsed();
                tracing::warn!(partner = %name, secs = seen.as_secs(), "a partner sees another node with this key");
                if seen >= LIVE_ELSEWHERE_FOR {
                    return Err(RejoinError::LiveElsewhere {
                        peer: name,
                        secs: seen.as_secs(),
                    });
                }
                return Ok(None);
            }
            Ok(Response::Hello { .. }) => {
                self.elsewhere.remove(&peer);
            }
            other => {
                tracing::debug!(partner = %name, answer = ?other.map(|r| r.kind()), "no answer to hello yet");
                return Ok(None);
            }
        }

        // Our own log: at least as long as the partner's copy, and the same where both have it.
        let heads = match net.request(peer, Request::GetHeads).await {
            Ok(Response::Heads(heads)) => heads,
            other => {
                tracing::debug!(partner = %name, answer = ?other.map(|r| r.kind()), "no heads yet");
                return Ok(None);
            }
        };
        let theirs = heads.iter().find(|h| h.partner == me).cloned();
        if let Some(theirs) = theirs {
            let before = self.own_size().await?;
            if theirs.size > before {
                tracing::warn!(partner = %name, theirs = theirs.size, ours = before,
                    "a partner holds more of this node's own log than its store: fetching it back");
                self.replicator.fetch_log(peer, me).await;
                let after = self.own_size().await?;
                self.entries_restored += after.saturating_sub(before);
                if after < theirs.size {
                    let failures = self.restore_failures.entry(peer).or_insert(0);
                    *failures += 1;
                    if *failures >= RESTORE_ATTEMPTS {
                        return Err(RejoinError::CannotRestore {
                            peer: name,
                            theirs: theirs.size,
                            ours: after,
                        });
                    }
                    return Ok(None);
                }
            }
            if let Some(seq) = theirs.size.checked_sub(1) {
                let ours = node
                    .blocking(move |s| s.entries(&me, seq, 1))
                    .await
                    .ok()
                    .and_then(|e| e.into_iter().next());
                if ours.map(|e| e.id()) != Some(theirs.last) {
                    return Err(RejoinError::Diverged { peer: name, seq });
                }
            }
        }

        // Our votes the partner holds for orders it could not certify.
        let held = match net.request(peer, Request::GetHeldVotes { voter: me }).await {
            Ok(Response::HeldVotes(held)) => held,
            other => {
                tracing::debug!(partner = %name, answer = ?other.map(|r| r.kind()), "no held votes yet");
                return Ok(None);
            }
        };
        if !held.is_empty() {
            match node.writer().restore_votes(held).await {
                Ok(done) => {
                    if done.restored > 0 {
                        tracing::warn!(partner = %name, restored = done.restored,
                            "a partner held votes of this node that its store had lost: stored again");
                    }
                    self.votes.restored += done.restored;
                    self.votes.held += done.held;
                    self.votes.invalid += done.invalid;
                    self.votes.conflicting += done.conflicting;
                }
                Err(e) => {
                    tracing::warn!(partner = %name, error = %e, "cannot store the votes a partner held");
                    return Ok(None);
                }
            }
        }
        Ok(Some(heads))
    }

    async fn own_size(&self) -> Result<u64, RejoinError> {
        let me = self.node.me();
        // A failed read is our store's problem and the verification pass stops the node for it;
        // here it reads as an empty log, so the partner's copy is fetched rather than trusted away.
        Ok(self
            .node
            .blocking(move |s| LedgerView::log_head(s, &me))
            .await
            .map(|h| h.size)
            .unwrap_or(0))
    }

    /// Waits, up to [`CATCH_UP`], until every log is as long here as the confirming partners held
    /// it: certificates that carry our votes are then here, and the vote rule refuses their
    /// spends again.
    async fn catch_up(&self) {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            let mut behind = false;
            for (peer, heads) in &self.confirmed {
                for h in heads
                    .iter()
                    .filter(|h| self.node.genesis().is_partner(&h.partner))
                {
                    let partner = h.partner;
                    let ours = self
                        .node
                        .blocking(move |s| LedgerView::log_head(s, &partner))
                        .await
                        .map(|h| h.size)
                        .unwrap_or(0);
                    if ours < h.size {
                        behind = true;
                    }
                }
                if behind {
                    self.replicator.on_heads(*peer, heads.clone()).await;
                }
            }
            if !behind {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "some logs are still behind what partners held at the start; signing anyway"
                );
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
