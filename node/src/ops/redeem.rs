//! Redemption at this partner (DESIGN.md §4): gather a quorum of votes for a member-signed order,
//! turn them into a certificate and append it. [`Redeemer`] does it for a POS request and for the
//! in-flight retry ([`crate::ops::inflight`]); it knows which orders a live request is working on,
//! so the two never race on one order.

use crate::error::{InvalidRequest, MissReason, NodeError, NodeResult, VoteMiss};
use crate::node::Node;
use crate::p2p::{Refusal, Request, Response};
use crate::writer::{AppendError, VoteFailure};
use coalition_client::types::{EntryRef, RedeemResponse};
use coalition_core::cert::CertBuilder;
use coalition_core::cert_window;
use coalition_core::hash::Hash;
use coalition_core::ledger::RuleError;
use coalition_core::record::{PartnerId, Record, SignedOrder, Vote};
use coalition_core::replica::IngestError;
use coalition_core::state::LedgerView;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Redeems orders at this node. Cheap to clone; clones share the set of orders being worked on.
#[derive(Clone)]
pub struct Redeemer {
    node: Arc<Node>,
    /// Orders a request or the retry is working on now.
    active: Arc<Mutex<BTreeSet<Hash>>>,
    /// How long votes are gathered for one attempt.
    vote_timeout: Duration,
}

impl Redeemer {
    /// A redeemer on `node`, giving each attempt `vote_timeout` to gather a quorum.
    pub fn new(node: Arc<Node>, vote_timeout: Duration) -> Redeemer {
        Redeemer {
            node,
            active: Arc::default(),
            vote_timeout,
        }
    }

    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The `POST /v1/redeem` flow: check the order, remember it in flight (synced), gather votes,
    /// append the certificate, answer with the receipt.
    pub async fn redeem(&self, token: &str) -> NodeResult<RedeemResponse> {
        let started = Instant::now();
        let order = coalition_client::order::parse_order_token(token)
            .map_err(InvalidRequest::OrderToken)?;
        let node = &self.node;
        if order.order.redeemer != node.me() {
            return Err(InvalidRequest::OtherRedeemer {
                redeemer: node.name_of(&order.order.redeemer),
            }
            .into());
        }
        // The order's form and the member's signature, before anything is read or written.
        let genesis = node.genesis().clone();
        let builder = CertBuilder::new(&genesis, order.clone()).map_err(NodeError::OrderRefused)?;
        // A POS that retries an order already certified here gets the same receipt, not a second
        // spend.
        if let Some(done) = self.already_certified(&order).await? {
            return Ok(done);
        }
        // Our own vote would be refused until the node has rejoined: say so now, not after the
        // vote timeout.
        if !node.writer().is_open() {
            return Err(NodeError::Rejoining);
        }
        // Nor gather votes for a certificate our log could no longer take.
        self.check_window(&order).await?;
        let order_id = order.order.id();
        let Some(_active) = Active::enter(self, order_id) else {
            return Err(NodeError::Busy { order: order_id });
        };
        node.writer().put_inflight(order).await?;
        let result = self.complete(builder).await;
        // Certified but not appended: it stays in flight, for the retry to append.
        if !matches!(result, Err(NodeError::NotAppended(_))) {
            self.forget(order_id);
        }
        let metrics = node.metrics();
        match &result {
            Ok(r) => {
                metrics.certificates_formed.inc();
                metrics.points_redeemed.inc_by(r.points);
                metrics
                    .redemption_latency
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(e) => {
                let reason = crate::metrics::label("reason", e.redemption_reason());
                metrics.redemptions_failed.get_or_create(&reason).inc();
            }
        }
        result
    }

    /// One more attempt at an order left in flight: its receipt, or `Ok(None)` if a live request
    /// has it or it turns out to be certified already.
    pub async fn retry(&self, order: SignedOrder) -> NodeResult<Option<RedeemResponse>> {
        let id = order.order.id();
        // Held for the whole attempt, so a POS resubmitting the order meanwhile is told to retry
        // rather than racing this append.
        let Some(_active) = Active::enter(self, id) else {
            return Ok(None);
        };
        // Appended before a crash took the node down ahead of clearing the mark.
        if self.already_certified(&order).await?.is_some() {
            self.forget(id);
            return Ok(None);
        }
        let genesis = self.node.genesis().clone();
        let attempt = match (
            self.check_window(&order).await,
            CertBuilder::new(&genesis, order),
        ) {
            (Err(e), _) => Err(e),
            (Ok(()), Ok(builder)) => self.complete(builder).await,
            (Ok(()), Err(e)) => Err(NodeError::OrderRefused(e)),
        };
        match attempt {
            Ok(done) => {
                self.node.metrics().certificates_formed.inc();
                self.forget(id);
                Ok(Some(done))
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                self.forget(id);
                Err(e)
            }
        }
    }

    /// Removes an order from the in-flight set, in the background: nobody waits for it (the
    /// removal is not synced anyway), and if it is lost the retry finds the order done and removes
    /// it again.
    fn forget(&self, order_id: Hash) {
        let writer = self.node.writer().clone();
        tokio::spawn(async move {
            if let Err(e) = writer.remove_inflight(order_id).await {
                tracing::warn!(order = %order_id.short(), error = %e, "cannot forget an in-flight order");
            }
        });
    }

    /// Gathers votes for the builder's order, forms the certificate, appends it.
    async fn complete(&self, mut builder: CertBuilder<'_>) -> NodeResult<RedeemResponse> {
        let node = &self.node;
        let genesis = builder.genesis();
        let order = builder.order().clone();
        let needed = genesis.quorum();
        let n = genesis.n();
        let deadline = Instant::now() + self.vote_timeout;
        let mut misses: Vec<(PartnerId, MissReason)> = Vec::new();

        let mut asks: FuturesUnordered<_> = genesis
            .partners
            .iter()
            .map(|p| ask(node.clone(), p.id, order.clone(), deadline))
            .collect();
        while let Some((partner, outcome)) = asks.next().await {
            match outcome.and_then(|vote| builder.add(&vote).map_err(MissReason::InvalidVote)) {
                Ok(_) => {}
                Err(reason) => {
                    if let MissReason::InvalidVote(e) = &reason {
                        tracing::warn!(partner = %node.name_of(&partner), error = %e, "partner sent an invalid vote");
                    }
                    misses.push((partner, reason));
                }
            }
            // Stop once a quorum is in, or can no longer be reached.
            if builder.has_quorum() || misses.len() > n.saturating_sub(needed) {
                break;
            }
        }
        let got = builder.count();
        if !builder.has_quorum() {
            // Partners' votes (ours is in our store), kept since no certificate comes of them.
            let me = node.me();
            self.hold(
                order.clone(),
                builder.votes().filter(|v| v.partner != me).collect(),
            );
            let out_of_reach = misses.len() > n.saturating_sub(needed);
            let refusal = misses.iter().find_map(|(p, m)| match m {
                MissReason::Refused(r) => Some((p, r)),
                _ => None,
            });
            if let (true, Some((p, r))) = (out_of_reach, refusal) {
                return Err(NodeError::RefusedBy {
                    partner: node.name_of(p),
                    code: r.code,
                    message: r.message.clone(),
                    got,
                    needed,
                });
            }
            let failures = misses
                .into_iter()
                .map(|(p, reason)| VoteMiss {
                    partner: node.name_of(&p),
                    reason,
                })
                .collect();
            return Err(NodeError::NoQuorum {
                got,
                needed,
                failures,
            });
        }
        let verified = builder.finish().map_err(|_| NodeError::Invariant {
            what: "a builder with a quorum could not finish its certificate",
        })?;
        let cert = verified.inner().clone();
        let order_id = cert.order.order.id();
        let points = cert.order.order.points;
        let entry =
            node.writer().append_certificate(verified).await.map_err(
                |e| match late_certificate(&e) {
                    Some(late) => late,
                    None => NodeError::NotAppended(e),
                },
            )?;
        node.gossip_entry(entry.clone());
        tracing::info!(
            target: "audit",
            order = %order_id.short(),
            points,
            votes = got,
            position = entry.entry.seq,
            "redemption certified"
        );
        Ok(RedeemResponse {
            order_id,
            points,
            votes: got,
            cert,
            entry: EntryRef {
                partner: node.me(),
                seq: entry.entry.seq,
                entry_id: entry.id(),
            },
        })
    }

    /// Keeps partners' votes for an order that got no certificate, in the background: a voter that
    /// loses its copy learns them back from here when it restarts (docs/protocol.md, "Rejoining
    /// after a start").
    fn hold(&self, order: SignedOrder, votes: Vec<Vote>) {
        if votes.is_empty() {
            return;
        }
        let writer = self.node.writer().clone();
        tokio::spawn(async move {
            let id = order.order.id();
            if let Err(e) = writer.hold_votes(order, votes).await {
                tracing::warn!(order = %id.short(), error = %e, "cannot keep the votes gathered for an order");
            }
        });
    }

    /// [`NodeError::OrderTooLate`] once our log has closed the last epoch that could hold the
    /// order's certificate (`coalition_core::cert_window`).
    async fn check_window(&self, order: &SignedOrder) -> NodeResult<()> {
        let genesis = self.node.genesis();
        let time = order.order.time;
        let last_epoch = cert_window::last_append_epoch(genesis, time);
        let me = self.node.me();
        let head = self
            .node
            .blocking(move |s| LedgerView::log_head(s, &me))
            .await?;
        if head.open_epoch <= last_epoch {
            return Ok(());
        }
        Err(NodeError::OrderTooLate {
            order: order.order.id(),
            order_epoch: cert_window::order_epoch(genesis, time),
            last_epoch,
        })
    }

    /// The receipt of an order whose certificate is already in our log.
    async fn already_certified(&self, order: &SignedOrder) -> NodeResult<Option<RedeemResponse>> {
        let id = order.order.id();
        let found = self.node.blocking(move |s| s.record_entry(&id)).await?;
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
}

/// Asks one partner (ourselves included) for its vote, asking again after "not yet" refusals and
/// failures until the deadline.
async fn ask(
    node: Arc<Node>,
    partner: PartnerId,
    order: SignedOrder,
    deadline: Instant,
) -> (PartnerId, Result<Vote, MissReason>) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let outcome = if partner == node.me() {
            match node.writer().vote(order.clone(), node.now()).await {
                Ok(v) => Ok(v),
                Err(VoteFailure::Refused(r)) => Err(MissReason::Refused(Refusal::from(&r))),
                Err(VoteFailure::Writer(e)) => Err(MissReason::Ours(e)),
            }
        } else {
            let left = deadline.saturating_duration_since(Instant::now());
            let request = Request::Vote {
                order: order.clone(),
            };
            match tokio::time::timeout(left, node.net().request(partner, request)).await {
                Ok(Ok(Response::Vote(Ok(v)))) => Ok(v),
                Ok(Ok(Response::Vote(Err(r)))) => Err(MissReason::Refused(r)),
                Ok(Ok(Response::Error { message })) => Err(MissReason::PeerFailed { message }),
                Ok(Ok(other)) => Err(MissReason::Unexpected { kind: other.kind() }),
                Ok(Err(e)) => Err(MissReason::Network(e)),
                Err(_) => Err(MissReason::NoAnswer),
            }
        };
        let again = match &outcome {
            Err(MissReason::Refused(r)) => r.code.is_transient(),
            Err(_) => true,
            Ok(_) => false,
        };
        if !again || Instant::now() + backoff >= deadline {
            return (partner, outcome);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// The append failed because our log closed the certificate's last epoch while votes were being
/// gathered: as final as a refusal.
fn late_certificate(e: &AppendError) -> Option<NodeError> {
    let AppendError::Rejected(rejected) = e else {
        return None;
    };
    match rejected.as_ref() {
        IngestError::Rule { source, .. } => match source.as_ref() {
            RuleError::LateCertificate {
                order,
                order_epoch,
                last_epoch,
                ..
            } => Some(NodeError::OrderTooLate {
                order: *order,
                order_epoch: *order_epoch,
                last_epoch: *last_epoch,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Marks an order as being worked on for as long as the guard lives.
struct Active<'a> {
    redeemer: &'a Redeemer,
    id: Hash,
}

impl<'a> Active<'a> {
    /// `None` when the order is already being worked on.
    fn enter(redeemer: &'a Redeemer, id: Hash) -> Option<Active<'a>> {
        // The set only ever holds ids; a panic elsewhere cannot leave it inconsistent.
        let inserted = redeemer
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id);
        // Lazily: a guard made and dropped when the id was already held would remove the other
        // holder's mark, and its drop would wait on the lock still held here.
        inserted.then(|| Active { redeemer, id })
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.redeemer
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.id);
    }
}
