//! Anti-entropy and catch-up: every few seconds ask each connected partner for its view of every log
//! head, and fetch, from whoever has more, the entries we lack. A node that was down, started late or
//! sat behind a partition converges without anyone re-sending anything. Gossip is only the fast path.

use crate::p2p::{HeadAnnouncement, Request, Response};
use crate::service::Node;
use crate::writer::{check_signatures, Checked, IngestReport};
use coalition_core::ledger::{LedgerView, Missing};
use coalition_core::record::PartnerId;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Entries asked for per request while catching up.
const FETCH_BATCH: u32 = 512;

/// Which logs are being fetched now, so one log is fetched by one task at a time.
#[derive(Default)]
pub struct SyncState {
    fetching: Mutex<BTreeSet<PartnerId>>,
}

/// Our view of every log head.
pub async fn our_heads(node: &Node) -> Result<Vec<HeadAnnouncement>, crate::api::ApiError> {
    let heads = node.blocking(|s| s.heads()).await?;
    Ok(heads
        .into_iter()
        .map(|(partner, h)| HeadAnnouncement {
            partner,
            size: h.size,
            last: h.last,
        })
        .collect())
}

/// The periodic pass.
pub async fn anti_entropy(node: Arc<Node>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let peers = node.net.connected_peers().await.unwrap_or_default();
        for peer in peers {
            let node = node.clone();
            tokio::spawn(async move {
                match node.net.request(peer, Request::GetHeads).await {
                    Ok(Response::Heads(heads)) => on_heads(&node, peer, heads).await,
                    Ok(other) => {
                        tracing::debug!(peer = %node.name_of(&peer), ?other, "unexpected answer to GetHeads")
                    }
                    Err(e) => {
                        tracing::debug!(peer = %node.name_of(&peer), error = %e, "GetHeads failed")
                    }
                }
            });
        }
        let (pending, _) = node.writer.pending().await;
        node.metrics.pending_entries.set(pending as i64);
    }
}

/// A peer told us its heads: fetch every log where it has more than we do.
pub async fn on_heads(node: &Arc<Node>, peer: PartnerId, heads: Vec<HeadAnnouncement>) {
    for h in heads {
        if !node.genesis.is_partner(&h.partner) {
            continue;
        }
        let partner = h.partner;
        let ours = match node.blocking(move |s| s.log_head(&partner)).await {
            Ok(head) => head.size,
            Err(_) => continue,
        };
        if h.size > ours {
            let node = node.clone();
            tokio::spawn(async move { fetch_log(&node, peer, partner).await });
        }
    }
}

/// After ingesting gossip: if the entry is early, fetch what it waits for from the peer that sent it.
pub async fn after_ingest(node: &Arc<Node>, from: PartnerId, report: &IngestReport) {
    note_report(node, report);
    // A lot or an earlier spend lives in another log: the next anti-entropy pass finds the log that
    // is behind. Only a gap in the sender's own view of a log is fetched at once.
    for m in &report.missing {
        if let Missing::PriorEntry { partner, .. } = m {
            let (node, partner) = (node.clone(), *partner);
            tokio::spawn(async move { fetch_log(&node, from, partner).await });
        }
    }
}

fn note_report(node: &Node, report: &IngestReport) {
    for bad in &report.bad {
        node.metrics
            .entries_rejected
            .get_or_create(&crate::metrics::label("reason", "invalid"))
            .inc();
        tracing::warn!(reason = %bad, "refused an entry");
    }
    for r in &report.rejected {
        node.metrics
            .entries_rejected
            .get_or_create(&crate::metrics::label("reason", "rule"))
            .inc();
        tracing::warn!(partner = %node.name_of(&r.partner), seq = r.seq, reason = %r.reason, "dropped a parked entry that breaks a rule");
    }
    for p in &report.equivocations {
        node.metrics.equivocations.inc();
        tracing::error!(partner = %node.name_of(p), "partner equivocated; its entries are refused from now on");
    }
    if let Some(f) = &report.failure {
        tracing::error!(error = %f, "ingest failed");
    }
    if report.applied > 0 {
        node.metrics
            .entries_applied
            .get_or_create(&crate::metrics::label("source", "peer"))
            .inc_by(report.applied as u64);
    }
}

/// Fetches `partner`'s log from `peer`, from our head on, until the peer has nothing more.
pub async fn fetch_log(node: &Arc<Node>, peer: PartnerId, partner: PartnerId) {
    {
        let Ok(mut f) = node.sync.fetching.lock() else {
            return;
        };
        if !f.insert(partner) {
            return;
        }
    }
    let result = fetch_loop(node, peer, partner).await;
    if let Ok(mut f) = node.sync.fetching.lock() {
        f.remove(&partner);
    }
    if let Err(e) = result {
        tracing::debug!(peer = %node.name_of(&peer), log = %node.name_of(&partner), error = %e, "catch-up stopped");
    }
}

/// Fetches ranges of `partner`'s log from `peer` until it has no more. Pipelined: the next range is
/// fetched and signature-checked (on the blocking pool) while the writer applies the current one,
/// so catch-up spends a second core on signatures instead of waiting for them.
async fn fetch_loop(node: &Arc<Node>, peer: PartnerId, partner: PartnerId) -> Result<(), String> {
    let mut from = node
        .blocking(move |s| s.log_head(&partner))
        .await
        .map_err(|e| e.to_string())?
        .size;
    let mut next = Some(tokio::spawn(fetch_checked(
        node.clone(),
        peer,
        partner,
        from,
    )));
    while let Some(fetching) = next.take() {
        let (n, checked) = fetching.await.map_err(|e| e.to_string())??;
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
        let report = node.writer.ingest_checked(checked).await;
        note_report(node, &report);
        if !report.bad.is_empty() || report.failure.is_some() || report.applied == 0 {
            // Nothing moved: either the peer sent bad data or the entries wait on other logs. Stop
            // (the range being fetched is dropped); the next pass retries once the dependencies
            // are here.
            if let Some(next) = next {
                next.abort();
            }
            return Ok(());
        }
    }
    Ok(())
}

/// One range of `partner`'s log from position `from`, signatures checked: its length and entries.
async fn fetch_checked(
    node: Arc<Node>,
    peer: PartnerId,
    partner: PartnerId,
    from: u64,
) -> Result<(usize, Vec<Checked>), String> {
    let resp = node
        .net
        .request(
            peer,
            Request::GetRange {
                partner,
                from,
                limit: FETCH_BATCH,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let entries = match resp {
        Response::Range { entries } => entries,
        other => return Err(format!("unexpected answer: {other:?}")),
    };
    if entries.iter().any(|e| e.entry.partner != partner) {
        return Err("peer answered with entries of another log".into());
    }
    let n = entries.len();
    let checked = tokio::task::spawn_blocking(move || check_signatures(entries))
        .await
        .map_err(|e| e.to_string())?;
    Ok((n, checked))
}
