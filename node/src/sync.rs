//! Anti-entropy and catch-up ([`Replicator`]): every few seconds ask each connected partner for its
//! view of every log head, and fetch, from whoever has more, the entries we lack. A node that was
//! down, started late or sat behind a partition converges without anyone re-sending anything.
//! Gossip is only the fast path.

use crate::error::NodeError;
use crate::node::Node;
use crate::p2p::{HeadAnnouncement, NetError, Request, Response};
use crate::writer::{check_signatures, Checked, IngestReport};
use coalition_core::ledger::Missing;
use coalition_core::record::PartnerId;
use coalition_core::state::LedgerView;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Entries asked for per request while catching up.
const FETCH_BATCH: u32 = 512;

/// Why a catch-up of one log stopped early.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    /// The request failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Our own store or a task failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The peer answered something other than a range.
    #[error("unexpected answer {kind}")]
    Unexpected {
        /// What it answered.
        kind: &'static str,
    },
    /// The peer answered with entries of another log than the one asked for.
    #[error("peer answered with entries of another log")]
    OtherLog,
}

impl From<tokio::task::JoinError> for FetchError {
    fn from(e: tokio::task::JoinError) -> FetchError {
        FetchError::Node(e.into())
    }
}

/// Replicates every log from peers. Cheap to clone; clones share which logs are being fetched, so
/// one log is fetched by one task at a time.
#[derive(Clone)]
pub struct Replicator {
    node: Arc<Node>,
    fetching: Arc<Mutex<BTreeSet<PartnerId>>>,
}

impl Replicator {
    /// A replicator for `node`.
    pub fn new(node: Arc<Node>) -> Replicator {
        Replicator {
            node,
            fetching: Arc::default(),
        }
    }

    /// The anti-entropy task: every `every`, ask each connected partner for its heads.
    pub async fn run(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let peers = self.node.net().connected_peers().await.unwrap_or_default();
            for peer in peers {
                let this = self.clone();
                tokio::spawn(async move { this.ask_heads(peer).await });
            }
            let (pending, _) = self.node.writer().pending().await;
            self.node.metrics().pending_entries.set(pending as i64);
        }
    }

    async fn ask_heads(&self, peer: PartnerId) {
        let node = &self.node;
        match node.net().request(peer, Request::GetHeads).await {
            Ok(Response::Heads(heads)) => self.on_heads(peer, heads).await,
            Ok(other) => {
                tracing::debug!(peer = %node.name_of(&peer), answer = other.kind(), "unexpected answer to GetHeads")
            }
            Err(e) => tracing::debug!(peer = %node.name_of(&peer), error = %e, "GetHeads failed"),
        }
    }

    /// A peer told us its heads: fetch every log where it has more than we do.
    pub async fn on_heads(&self, peer: PartnerId, heads: Vec<HeadAnnouncement>) {
        for h in heads {
            if !self.node.genesis().is_partner(&h.partner) {
                continue;
            }
            let partner = h.partner;
            let ours = match self
                .node
                .blocking(move |s| LedgerView::log_head(s, &partner))
                .await
            {
                Ok(head) => head.size,
                Err(_) => continue,
            };
            if h.size > ours {
                let this = self.clone();
                tokio::spawn(async move { this.fetch_log(peer, partner).await });
            }
        }
    }

    /// After ingesting gossip: if the entry is early, fetch what it waits for from the peer that
    /// sent it.
    pub async fn after_ingest(&self, from: PartnerId, report: &IngestReport) {
        note_report(&self.node, report);
        // A lot or an earlier spend lives in another log: the next anti-entropy pass finds the log
        // that is behind. Only a gap in the sender's own view of a log is fetched at once.
        for m in &report.missing {
            if let Missing::PriorEntry { partner, .. } = m {
                let (this, partner) = (self.clone(), *partner);
                tokio::spawn(async move { this.fetch_log(from, partner).await });
            }
        }
    }

    /// Fetches `partner`'s log from `peer`, from our head on, until the peer has nothing more.
    pub async fn fetch_log(&self, peer: PartnerId, partner: PartnerId) {
        {
            let Ok(mut f) = self.fetching.lock() else {
                return;
            };
            if !f.insert(partner) {
                return;
            }
        }
        let result = self.fetch_loop(peer, partner).await;
        if let Ok(mut f) = self.fetching.lock() {
            f.remove(&partner);
        }
        if let Err(e) = result {
            let node = &self.node;
            tracing::debug!(peer = %node.name_of(&peer), log = %node.name_of(&partner), error = %e, "catch-up stopped");
        }
    }

    /// Fetches ranges of `partner`'s log from `peer` until it has no more. Pipelined: the next
    /// range is fetched and signature-checked (on the blocking pool) while the writer applies the
    /// current one, so catch-up spends a second core on signatures instead of waiting for them.
    async fn fetch_loop(&self, peer: PartnerId, partner: PartnerId) -> Result<(), FetchError> {
        let node = &self.node;
        let mut from = node
            .blocking(move |s| LedgerView::log_head(s, &partner))
            .await?
            .size;
        let mut next = Some(tokio::spawn(fetch_checked(
            node.clone(),
            peer,
            partner,
            from,
        )));
        while let Some(fetching) = next.take() {
            let (n, checked) = fetching.await??;
            if n == 0 {
                return Ok(());
            }
            from = from.saturating_add(n as u64);
            if n >= FETCH_BATCH as usize {
                next = Some(tokio::spawn(fetch_checked(
                    node.clone(),
                    peer,
                    partner,
                    from,
                )));
            }
            let report = node.writer().ingest_checked(checked).await;
            note_report(node, &report);
            if !report.bad.is_empty() || report.failure.is_some() || report.applied == 0 {
                // Nothing moved: either the peer sent bad data or the entries wait on other logs.
                // Stop (the range being fetched is dropped); the next pass retries once the
                // dependencies are here.
                if let Some(next) = next {
                    next.abort();
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Our view of every log head, to answer a peer.
    pub async fn our_heads(&self) -> Result<Vec<HeadAnnouncement>, NodeError> {
        let heads = self.node.blocking(|s| s.heads()).await?;
        Ok(heads
            .into_iter()
            .map(|(partner, h)| HeadAnnouncement {
                partner,
                size: h.size,
                last: h.last,
            })
            .collect())
    }
}

/// One range of `partner`'s log from position `from`, signatures checked: its length and entries.
async fn fetch_checked(
    node: Arc<Node>,
    peer: PartnerId,
    partner: PartnerId,
    from: u64,
) -> Result<(usize, Vec<Checked>), FetchError> {
    let req = Request::GetRange {
        partner,
        from,
        limit: FETCH_BATCH,
    };
    let entries = match node.net().request(peer, req).await? {
        Response::Range { entries } => entries,
        other => return Err(FetchError::Unexpected { kind: other.kind() }),
    };
    if entries.iter().any(|e| e.entry.partner != partner) {
        return Err(FetchError::OtherLog);
    }
    let n = entries.len();
    let checked = tokio::task::spawn_blocking(move || check_signatures(entries)).await?;
    Ok((n, checked))
}

/// Logs and counts what an ingest did.
pub fn note_report(node: &Node, report: &IngestReport) {
    let metrics = node.metrics();
    for bad in &report.bad {
        let reason = crate::metrics::label("reason", "invalid");
        metrics.entries_rejected.get_or_create(&reason).inc();
        tracing::warn!(reason = %bad, "refused an entry");
    }
    for r in &report.rejected {
        let reason = crate::metrics::label("reason", "rule");
        metrics.entries_rejected.get_or_create(&reason).inc();
        tracing::warn!(partner = %node.name_of(&r.partner), seq = r.seq, reason = %r.reason, "dropped a parked entry that breaks a rule");
    }
    for p in &report.equivocations {
        metrics.equivocations.inc();
        if *p == node.me() {
            tracing::error!(
                "a partner holds entries of this node's own log that conflict with its store: the \
                 store had lost entries a partner that was down during the rejoin held, and this \
                 node signed over them (see \"Backup and restore\" in docs/operating.md)"
            );
        } else {
            tracing::error!(partner = %node.name_of(p), "partner equivocated; its entries are refused from now on");
        }
    }
    if let Some(f) = &report.failure {
        tracing::error!(error = %f, "ingest failed");
    }
    if report.applied > 0 {
        let source = crate::metrics::label("source", "peer");
        metrics
            .entries_applied
            .get_or_create(&source)
            .inc_by(report.applied as u64);
    }
}
