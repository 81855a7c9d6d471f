//! Handlers: decode and check the request, call the node, encode the answer. No rules live here.

use super::error::{rejection, ApiError};
use crate::service::Node;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use coalition_client::types::*;
use coalition_core::checkpoint::{RecordProof, SealedCheckpoint};
use coalition_core::hash::Hash;
use coalition_core::record::{Epoch, MemberId, PartnerId};
use serde::Deserialize;
use std::sync::Arc;

type Shared = State<Arc<Node>>;

pub(super) fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/genesis", get(genesis))
        .route("/v1/issue", post(issue))
        .route("/v1/redeem", post(redeem))
        .route("/v1/members/{id}/balance", get(balance))
        .route("/v1/members/{id}/history", get(history))
        .route("/v1/logs/{partner}", get(log_range))
        .route("/v1/checkpoints/{epoch}", get(checkpoint))
        .route("/v1/settlement/{epoch}", get(settlement))
        .route("/v1/proofs/{record}", get(proof))
        .route("/v1/admin/partition", post(partition))
        .fallback(|| async { ApiError::NotFound("no such route; see /v1/status".into()) })
}

/// Constant-time comparison of the bearer token.
fn authorize(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let want = node.api_token().as_bytes();
    let given = given.trim().as_bytes();
    let same = given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn parse_member(s: &str) -> Result<MemberId, ApiError> {
    MemberId::from_hex(s).map_err(|e| ApiError::BadRequest(format!("member id: {e}")))
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "ok": true }))
}

async fn metrics(State(node): Shared) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics().render(),
    )
}

async fn status(State(node): Shared) -> Result<Json<Status>, ApiError> {
    node.status().await.map(Json)
}

async fn genesis(State(node): Shared) -> impl IntoResponse {
    Json(node.genesis().as_ref().clone())
}

async fn issue(
    State(node): Shared,
    headers: HeaderMap,
    body: Result<Json<IssueRequest>, JsonRejection>,
) -> Result<Json<IssueResponse>, ApiError> {
    authorize(&node, &headers)?;
    let Json(req) = body.map_err(rejection)?;
    node.issue(req).await.map(Json)
}

async fn partition(
    State(node): Shared,
    headers: HeaderMap,
    body: Result<Json<PartitionRequest>, JsonRejection>,
) -> Result<Json<PartitionResponse>, ApiError> {
    authorize(&node, &headers)?;
    let Json(req) = body.map_err(rejection)?;
    node.partition(req.isolated).await.map(Json)
}

async fn redeem(
    State(node): Shared,
    body: Result<Json<RedeemRequest>, JsonRejection>,
) -> Result<Json<RedeemResponse>, ApiError> {
    let Json(req) = body.map_err(rejection)?;
    node.redeem(&req.order).await.map(Json)
}

async fn balance(State(node): Shared, Path(id): Path<String>) -> Result<Json<Balance>, ApiError> {
    let member = parse_member(&id)?;
    node.balance(member).await.map(Json)
}

async fn history(State(node): Shared, Path(id): Path<String>) -> Result<Json<History>, ApiError> {
    let member = parse_member(&id)?;
    node.history(member).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    limit: Option<u64>,
}

async fn log_range(
    State(node): Shared,
    Path(partner): Path<String>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LogRange>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let partner = PartnerId::from_hex(&partner)
        .map_err(|e| ApiError::BadRequest(format!("partner id: {e}")))?;
    node.log_range(partner, q.from, q.limit.unwrap_or(1000).min(1000))
        .await
        .map(Json)
}

type EpochPath = Result<Path<Epoch>, axum::extract::rejection::PathRejection>;

fn epoch_of(path: EpochPath) -> Result<Epoch, ApiError> {
    path.map(|Path(e)| e)
        .map_err(|e| ApiError::BadRequest(format!("epoch: {}", e.body_text())))
}

async fn checkpoint(
    State(node): Shared,
    epoch: EpochPath,
) -> Result<Json<SealedCheckpoint>, ApiError> {
    crate::audit::checkpoint(&node, epoch_of(epoch)?)
        .await
        .map(Json)
}

async fn settlement(
    State(node): Shared,
    epoch: EpochPath,
) -> Result<Json<SettlementView>, ApiError> {
    crate::audit::settlement(&node, epoch_of(epoch)?)
        .await
        .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    #[serde(default)]
    epoch: Option<Epoch>,
}

async fn proof(
    State(node): Shared,
    Path(record): Path<String>,
    query: Result<Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordProof>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let record =
        Hash::from_hex(&record).map_err(|e| ApiError::BadRequest(format!("record id: {e}")))?;
    crate::audit::prove(&node, record, q.epoch).await.map(Json)
}
