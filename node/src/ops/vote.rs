//! Answering a partner's vote request (DESIGN.md §4): only the order's redeemer may ask; the vote
//! rule runs on the writer thread, and a new vote is durable before it leaves the node.

use crate::node::Node;
use crate::p2p::{Refusal, Response};
use crate::writer::VoteFailure;
use coalition_core::record::{PartnerId, SignedOrder};
use coalition_core::refusal::RefusalCode;

/// The answer to `from`'s request for a vote on `order`.
pub async fn answer(node: &Node, from: PartnerId, order: SignedOrder) -> Response {
    // Only the redeemer named in the order collects its votes.
    if order.order.redeemer != from {
        return Response::Vote(Err(Refusal {
            code: RefusalCode::NotRedeemer,
            message: "only the order's redeemer may ask for votes".into(),
        }));
    }
    match node.writer().vote(order, node.now()).await {
        Ok(v) => {
            node.metrics().votes_given.inc();
            Response::Vote(Ok(v))
        }
        Err(VoteFailure::Refused(r)) => {
            let code = r.code();
            let reason = crate::metrics::label("reason", code.as_str());
            node.metrics().votes_refused.get_or_create(&reason).inc();
            tracing::info!(redeemer = %node.name_of(&from), reason = %code, "vote refused");
            Response::Vote(Err(Refusal::from(&r)))
        }
        Err(VoteFailure::Writer(e)) => Response::Error {
            message: e.to_string(),
        },
    }
}
