//! Inbound network events, dispatched to the operation that handles each: gossiped entries to the
//! writer, heads to anti-entropy, checkpoint signatures to the seal module, requests to their
//! answers. At most [`MAX_GOSSIP`] gossip messages and [`MAX_REQUESTS`] requests are handled at
//! once, each kind with its own bound, so a flood of gossip never keeps a vote request (a member
//! waiting at a till) from being answered. Beyond a bound the dispatcher waits, the swarm task
//! queues events (up to its own bound) and then drops gossip and requests, which anti-entropy and
//! the requesters' retries make good. No peer can make the node spawn without bound.

use crate::epoch::seal;
use crate::node::Node;
use crate::ops::vote;
use crate::p2p::{Gossip, NetEvent, Request, Response, MAX_HELD_VOTES, MAX_RANGE_ENTRIES};
use crate::sync::Replicator;
use coalition_core::record::PartnerId;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Gossip messages handled at once, at most.
pub const MAX_GOSSIP: usize = 128;
/// Requests handled at once, at most.
pub const MAX_REQUESTS: usize = 128;

/// Handles every event from the network until the network task stops.
pub async fn run(node: Arc<Node>, replicator: Replicator, mut events: mpsc::Receiver<NetEvent>) {
    let gossip = Arc::new(Semaphore::new(MAX_GOSSIP));
    let requests = Arc::new(Semaphore::new(MAX_REQUESTS));
    let mut up = BTreeSet::new();
    while let Some(ev) = events.recv().await {
        match ev {
            NetEvent::PeerUp(p) => {
                up.insert(p);
                node.metrics().peers_connected.set(up.len() as i64);
                // The network layer logs "partner up" with its agent at info already.
                tracing::debug!(partner = %node.name_of(&p), "partner connected");
            }
            NetEvent::PeerDown(p) => {
                up.remove(&p);
                node.metrics().peers_connected.set(up.len() as i64);
                tracing::info!(partner = %node.name_of(&p), "partner disconnected");
            }
            other => {
                let limit = match other {
                    NetEvent::Request { .. } => &requests,
                    _ => &gossip,
                };
                // Closed only if the semaphore is closed, which it never is.
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let (node, replicator) = (node.clone(), replicator.clone());
                tokio::spawn(async move {
                    handle(&node, &replicator, other).await;
                    drop(permit);
                });
            }
        }
    }
}

async fn handle(node: &Arc<Node>, replicator: &Replicator, ev: NetEvent) {
    match ev {
        NetEvent::Gossip { from, msg, id } => match msg {
            Gossip::Entry(entry) => {
                let report = node.writer().ingest(vec![entry]).await;
                if !report.bad.is_empty() {
                    let _ = node.net().report_bad_gossip(id).await;
                }
                replicator.after_ingest(from, &report).await;
            }
            Gossip::Heads(heads) => replicator.on_heads(from, heads).await,
            Gossip::CheckpointSig(sig) => seal::on_signature(node, from, sig).await,
        },
        NetEvent::Request { from, req, reply } => {
            let resp = answer(node, replicator, from, req).await;
            let _ = reply.send(resp);
        }
        NetEvent::PeerUp(_) | NetEvent::PeerDown(_) => {}
    }
}

/// The answer to a partner's request.
async fn answer(
    node: &Arc<Node>,
    replicator: &Replicator,
    from: PartnerId,
    req: Request,
) -> Response {
    match req {
        Request::GetRange {
            partner,
            from: start,
            limit,
        } => {
            let limit = (limit as usize).min(MAX_RANGE_ENTRIES);
            match node
                .blocking(move |s| s.entries(&partner, start, limit))
                .await
            {
                Ok(entries) => Response::Range { entries }.fit_to_limits(),
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            }
        }
        Request::GetHeads => match replicator.our_heads().await {
            Ok(h) => Response::Heads(h),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Request::Vote { order } => vote::answer(node, from, order).await,
        Request::GetCheckpointSigs { epoch } => seal::signatures_for(node, epoch).await,
        // A partner learns back its own votes only: they are its to restore.
        Request::GetHeldVotes { voter } if voter != from => Response::Error {
            message: "a partner may ask only for the votes it gave itself".into(),
        },
        Request::GetHeldVotes { voter } => match node
            .blocking(move |s| s.held_votes_by(&voter, MAX_HELD_VOTES))
            .await
        {
            Ok(votes) => Response::HeldVotes(votes).fit_to_limits(),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        // Answered by the network task itself, which knows the connections.
        Request::Hello { .. } => Response::Error {
            message: "hello is answered by the network layer".into(),
        },
    }
}
