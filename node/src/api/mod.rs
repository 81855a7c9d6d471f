//! The HTTP JSON API the POS integrates with, plus `/metrics` and `/health`.
//!
//! Routes (types in `coalition_client::types`):
//! - `GET  /health`                         liveness
//! - `GET  /metrics`                        OpenMetrics text
//! - `GET  /v1/status`                      peers, log heads, epochs, fraud proofs
//! - `GET  /v1/genesis`                     the coalition's genesis
//! - `POST /v1/issue`               token   credit points to a member
//! - `POST /v1/redeem`                      redeem a member-signed order here (the signature is the authority)
//! - `GET  /v1/members/{id}/balance` reader  available points, lots, next sequence number
//! - `GET  /v1/members/{id}/history` reader  earn / redeem / expire lines
//! - `GET  /v1/logs/{partner}?from&limit` reader  canonical entries of a log (export)
//! - `GET  /v1/checkpoints/{epoch}`         the sealed checkpoint with its signatures
//! - `GET  /v1/settlement/{epoch}`          the settlement statement, and whether it is sealed
//! - `GET  /v1/proofs/{record}?epoch` reader  a record's inclusion proof up to a sealed checkpoint
//! - `POST /v1/admin/partition`     token   isolate the node from every partner, or heal it
//!
//! `token` is the partner's bearer token; `reader` is the partner's token, one of its auditors'
//! tokens, or, for a member's own balance and history, the member's signature on the request
//! (`coalition_client::auth`).
//!
//! This is the only module that knows HTTP: handlers decode the request, call an operation
//! (`crate::ops`) and encode its answer; every [`crate::error::NodeError`] becomes one status and
//! code in `error.rs`.

mod auth;
mod error;
mod routes;
mod serve;
pub mod tls;

pub use error::ApiError;
pub use serve::{
    raise_descriptor_limit, serve, Limits, BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, MAX_CONNECTIONS,
    MAX_PER_CLIENT, RESERVED_DESCRIPTORS,
};

use crate::node::Node;
use crate::ops::redeem::Redeemer;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::sync::Arc;

/// Largest request body accepted (an order token with many lots fits with room to spare).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
pub struct App {
    /// The node.
    pub node: Arc<Node>,
    /// Redemptions at this node.
    pub redeemer: Redeemer,
    /// The bearer token partner operations need.
    pub token: String,
    /// Bearer tokens of this partner's auditors: they read members' data, logs and proofs.
    pub auditor_tokens: Vec<String>,
}

/// The API's router over a running node.
pub fn router(app: App) -> Router {
    routes::routes()
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            serve::BODY_READ_TIMEOUT,
        ))
        .with_state(Arc::new(app))
}
