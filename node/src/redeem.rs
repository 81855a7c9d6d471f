//! Redemption: the redeemer gathers a quorum of votes for a member-signed order, turns them into a
//! certificate and appends it; every partner answers vote requests by the vote rule (DESIGN.md §4).

use crate::api::ApiError;
use crate::p2p::{Refusal, Request, Response};
use crate::service::{append_error, Node};
use crate::writer::{now, VoteOutcome};
use coalition_client::types::{EntryRef, RedeemResponse};
use coalition_core::genesis::Genesis;
use coalition_core::hash::Hash;
use coalition_core::quorum::{CertBuilder, CertError};
use coalition_core::record::{PartnerId, Record, SignedOrder};
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Refusals that mean "not yet": the voter has not received an earlier spend or the lot's issue.
/// The redeemer asks again until its deadline.
const TRANSIENT: &[&str] = &["future_seq", "unknown_lot"];

/// Decodes an order token (hex of the canonical `SignedOrder`).
pub fn decode_token(token: &str) -> Result<SignedOrder, ApiError> {
    coalition_client::order::parse_order_token(token)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The `POST /v1/redeem` flow.
pub async fn redeem(node: &Arc<Node>, token: &str) -> Result<RedeemResponse, ApiError> {
    let started = Instant::now();
    let order = decode_token(token)?;
    if order.order.redeemer != node.me {
        return Err(ApiError::BadRequest(format!(
            "this order is for {} and must be submitted at its node",
            node.name_of(&order.order.redeemer)
        )));
    }
    // The order's form and the member's signature, before anything is read or written.
    let genesis = node.genesis.clone();
    let builder = start(&genesis, order.clone())?;
    // A POS that retries an order already certified here gets the same receipt, not a second spend.
    if let Some(done) = already_certified(node, &order).await? {
        return Ok(done);
    }
    let order_id = order.order.id();
    let Some(_active) = Active::enter(node, order_id) else {
        return Err(ApiError::Unavailable(
            "this order is being redeemed by another request now; submit it again for the receipt"
                .into(),
        ));
    };
    let o2 = order.clone();
    node.blocking(move |s| s.put_inflight(&o2)).await?;
    let result = complete(node, builder).await;
    match &result {
        // Certified but not appended (our store failed): keep it in flight so it is appended later.
        Err(ApiError::Internal(_)) => {}
        _ => {
            let _ = node.blocking(move |s| s.remove_inflight(&order_id)).await;
        }
    }
    match &result {
        Ok(_) => {
            node.metrics.certificates_formed.inc();
            node.metrics
                .redemption_latency
                .observe(started.elapsed().as_secs_f64());
        }
        Err(e) => {
            let code = match e {
                ApiError::Refused { code, .. } => code.clone(),
                ApiError::NoQuorum { .. } => "no_quorum".into(),
                _ => "other".into(),
            };
            node.metrics
                .redemptions_failed
                .get_or_create(&crate::metrics::label("reason", &code))
                .inc();
        }
    }
    result
}

/// Checks the order's form and the member's signature: the certificate builder for it.
fn start(genesis: &Genesis, order: SignedOrder) -> Result<CertBuilder<'_>, ApiError> {
    CertBuilder::new(genesis, order).map_err(|e| {
        let code = match e {
            CertError::MemberSignature { .. } => "bad_member_signature",
            _ => "malformed",
        };
        ApiError::Refused {
            code: code.into(),
            message: e.to_string(),
        }
    })
}

/// Gathers votes for the builder's order, forms the certificate, appends it.
async fn complete(
    node: &Arc<Node>,
    mut builder: CertBuilder<'_>,
) -> Result<RedeemResponse, ApiError> {
    let genesis = builder.genesis();
    let order = builder.order().clone();
    let needed = genesis.quorum();
    let n = genesis.n();
    let deadline = Instant::now() + node.vote_timeout;
    let mut refusals: Vec<(PartnerId, Refusal)> = Vec::new();
    let mut failures: Vec<(PartnerId, String)> = Vec::new();

    let mut asks = FuturesUnordered::new();
    for p in genesis.partners.iter().map(|p| p.id) {
        asks.push(ask(node.clone(), p, order.clone(), deadline));
    }
    while let Some((partner, outcome)) = asks.next().await {
        match outcome {
            Ok(vote) => {
                if let Err(e) = builder.add(&vote) {
                    tracing::warn!(partner = %node.name_of(&partner), error = %e, "partner sent an invalid vote");
                    failures.push((partner, format!("invalid vote: {e}")));
                }
            }
            Err(Ask::Refused(r)) => refusals.push((partner, r)),
            Err(Ask::Failed(f)) => failures.push((partner, f)),
        }
        if builder.has_quorum() {
            break;
        }
        // Stop early once a quorum can no longer be reached.
        if refusals.len() + failures.len() > n.saturating_sub(needed) {
            break;
        }
    }
    if !builder.has_quorum() {
        let got = builder.count();
        if let Some((p, r)) = refusals.first() {
            if refusals.len() + failures.len() > n.saturating_sub(needed) && !refusals.is_empty() {
                return Err(ApiError::Refused {
                    code: r.code.clone(),
                    message: format!(
                        "{} refused: {} ({} of {} votes)",
                        node.name_of(p),
                        r.message,
                        got,
                        needed
                    ),
                });
            }
        }
        let detail = failures
            .iter()
            .map(|(p, f)| format!("{}: {f}", node.name_of(p)))
            .chain(
                refusals
                    .iter()
                    .map(|(p, r)| format!("{}: {}", node.name_of(p), r.message)),
            )
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::NoQuorum {
            got,
            needed,
            detail,
        });
    }
    let votes = builder.count();
    let verified = builder
        .finish()
        .map_err(|e| ApiError::Internal(format!("certificate: {e}")))?;
    let cert = verified.inner().clone();
    let order_id = cert.order.order.id();
    let points = cert.order.order.points;
    let entry = node
        .writer
        .append_certificate(verified)
        .await
        .map_err(|e| match append_error(e) {
            ApiError::BadRequest(m) => {
                ApiError::Internal(format!("certified but not appended: {m}"))
            }
            other => other,
        })?;
    node.gossip_entry(entry.clone());
    tracing::info!(order = %order_id.short(), points, votes, "redemption certified");
    Ok(RedeemResponse {
        order_id,
        points,
        votes,
        cert,
        entry: EntryRef {
            partner: node.me,
            seq: entry.entry.seq,
            entry_id: entry.id(),
        },
    })
}

/// The receipt of an order whose certificate is already in our log.
async fn already_certified(
    node: &Arc<Node>,
    order: &SignedOrder,
) -> Result<Option<RedeemResponse>, ApiError> {
    let id = order.order.id();
    let found = node.blocking(move |s| s.record_entry(&id)).await?;
    Ok(found.and_then(|entry| match &entry.entry.record {
        Record::Redeem(cert) if cert.order == *order => Some(RedeemResponse {
            order_id: id,
            points: cert.order.order.points,
            votes: cert.votes.len(),
            cert: cert.clone(),
            entry: EntryRef {
                partner: entry.entry.partner,
                seq: entry.entry.seq,
                entry_id: entry.id(),
            },
        }),
        _ => None,
    }))
}

enum Ask {
    Refused(Refusal),
    Failed(String),
}

/// Asks one partner (ourselves included) for its vote, retrying "not yet" refusals and unreachable
/// partners until the deadline.
async fn ask(
    node: Arc<Node>,
    partner: PartnerId,
    order: SignedOrder,
    deadline: Instant,
) -> (PartnerId, Result<coalition_core::record::Vote, Ask>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let outcome = if partner == node.me {
            match node.writer.vote(order.clone(), now()).await {
                VoteOutcome::Given(v) => Ok(v),
                VoteOutcome::Refused(r) => Err(Ask::Refused(Refusal {
                    code: r.code().into(),
                    message: r.message(),
                })),
                VoteOutcome::Failed(f) => Err(Ask::Failed(f)),
            }
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(
                left,
                node.net.request(
                    partner,
                    Request::Vote {
                        order: order.clone(),
                    },
                ),
            )
            .await
            {
                Ok(Ok(Response::Vote(Ok(v)))) => Ok(v),
                Ok(Ok(Response::Vote(Err(r)))) => Err(Ask::Refused(r)),
                Ok(Ok(other)) => Err(Ask::Failed(format!("unexpected answer {other:?}"))),
                Ok(Err(e)) => Err(Ask::Failed(e.to_string())),
                Err(_) => Err(Ask::Failed("no answer in time".into())),
            }
        };
        let retry = match &outcome {
            Err(Ask::Refused(r)) => TRANSIENT.contains(&r.code.as_str()),
            Err(Ask::Failed(_)) => true,
            Ok(_) => false,
        };
        if !retry || Instant::now() + backoff >= deadline {
            return (partner, outcome);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// Answers a partner's vote request.
pub async fn answer_vote(node: &Arc<Node>, from: PartnerId, order: SignedOrder) -> Response {
    // Only the redeemer named in the order collects its votes.
    if order.order.redeemer != from {
        return Response::Vote(Err(Refusal {
            code: "not_redeemer".into(),
            message: "only the order's redeemer may ask for votes".into(),
        }));
    }
    match node.writer.vote(order, now()).await {
        VoteOutcome::Given(v) => {
            node.metrics.votes_given.inc();
            Response::Vote(Ok(v))
        }
        VoteOutcome::Refused(r) => {
            node.metrics
                .votes_refused
                .get_or_create(&crate::metrics::label("reason", r.code()))
                .inc();
            tracing::info!(redeemer = %node.name_of(&from), reason = r.code(), "vote refused");
            Response::Vote(Err(Refusal {
                code: r.code().into(),
                message: r.message(),
            }))
        }
        VoteOutcome::Failed(f) => Response::Error { message: f },
    }
}

/// How often in-flight redemptions that no request is working on are tried again.
pub const RETRY_INFLIGHT_EVERY: Duration = Duration::from_secs(5);

/// Marks an order as being handled by a live request for as long as the guard lives.
struct Active<'a> {
    node: &'a Node,
    id: Hash,
}

impl<'a> Active<'a> {
    /// `None` when another request is already handling the order.
    fn enter(node: &'a Node, id: Hash) -> Option<Active<'a>> {
        // The set only ever holds ids; a panic elsewhere cannot leave it inconsistent.
        let inserted = node
            .redeeming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id);
        // Lazily: a guard made and dropped when the id was already held would remove the other
        // holder's mark, and its drop would wait on the lock still held here.
        inserted.then(|| Active { node, id })
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.node
            .redeeming
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.id);
    }
}

/// Completes redemptions left in flight: after a restart, those that were collecting votes when the
/// node stopped; while running, those whose certificate was formed but could not be appended yet
/// (it waited on an earlier spend this node had not received). Partners give the same vote again
/// for the same order, so a retry forms the same certificate. An order a live request is handling
/// is left to it, and a request arriving during a retry is told to submit again.
pub async fn retry_inflight(node: Arc<Node>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let orders = match node.blocking(|s| s.inflight()).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "cannot read in-flight redemptions");
                continue;
            }
        };
        for order in orders {
            let id = order.order.id();
            // Held for the whole attempt, so a POS resubmitting the order meanwhile is told to retry
            // rather than racing this append.
            let Some(_active) = Active::enter(&node, id) else {
                continue;
            };
            // Appended before a crash took the node down ahead of clearing the mark.
            if let Ok(Some(_)) = already_certified(&node, &order).await {
                let _ = node.blocking(move |s| s.remove_inflight(&id)).await;
                continue;
            }
            let genesis = node.genesis.clone();
            let attempt = match start(&genesis, order.clone()) {
                Ok(builder) => complete(&node, builder).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(r) => {
                    tracing::info!(order = %id.short(), seq = r.entry.seq, "in-flight redemption certified");
                    node.metrics.certificates_formed.inc();
                    let _ = node.blocking(move |s| s.remove_inflight(&id)).await;
                }
                // Not yet: partners unreachable, or the certificate still waits on an earlier spend.
                Err(e @ (ApiError::NoQuorum { .. } | ApiError::Internal(_))) => {
                    tracing::debug!(order = %id.short(), error = %e, "in-flight redemption not complete yet; will retry");
                }
                Err(e) => {
                    tracing::warn!(order = %id.short(), error = %e, "in-flight redemption did not complete");
                    let _ = node.blocking(move |s| s.remove_inflight(&id)).await;
                }
            }
        }
    }
}
