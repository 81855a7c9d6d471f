//! Handlers: decode and check the request, call the node, encode the answer. No rules live here.

use super::auth::{authorize, authorize_read};
use super::error::{rejection, ApiError};
use super::App;
use crate::ops::{admin, audit, issue, views};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use coalition_client::types::*;
use coalition_core::checkpoint::{RecordProof, SealedCheckpoint};
use coalition_core::hash::Hash;
use coalition_core::record::{Epoch, MemberId, PartnerId};
use serde::Deserialize;
use std::sync::Arc;

type Shared = State<Arc<App>>;

pub(super) fn routes() -> Router<Arc<App>> {
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
        .route("/v1/admin/backup", post(backup))
        .fallback(|| async { ApiError::no_route() })
}

fn parse_member(s: &str) -> Result<MemberId, ApiError> {
    MemberId::from_hex(s).map_err(|e| ApiError::bad_request(format!("member id: {e}")))
}

/// The member a `/v1/members/{id}/...` request names, once the request may read its data.
fn member_to_read(
    app: &App,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
) -> Result<MemberId, ApiError> {
    let member = parse_member(id)?;
    authorize_read(app, headers, Some((&member, uri.path())))?;
    Ok(member)
}

/// Healthy unless the node can no longer write: a supervisor or load balancer must not keep
/// sending it work. `ready` says whether it signs yet: false after a start until it has rejoined
/// (crate::rejoin), when issues and redemptions are refused with 503 `rejoining`.
async fn health(State(app): Shared) -> impl IntoResponse {
    let writer = app.node.writer();
    match writer.storage_failure() {
        None if writer.is_open() => (
            StatusCode::OK,
            Json(serde_json::json!({ "ok": true, "ready": true })),
        ),
        None => (
            StatusCode::OK,
            Json(serde_json::json!({
                "ok": true,
                "ready": false,
                "reason": "confirming this node's own log and votes with its partners after the start",
            })),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "ok": false, "reason": format!("storage failed: {reason}") })),
        ),
    }
}

async fn metrics(State(app): Shared) -> impl IntoResponse {
    (
        // What the encoder writes is OpenMetrics text (it ends in "# EOF"), not Prometheus 0.0.4.
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.node.metrics().render(),
    )
}

async fn status(State(app): Shared) -> Result<Json<Status>, ApiError> {
    Ok(Json(views::status(&app.node).await?))
}

async fn genesis(State(app): Shared) -> impl IntoResponse {
    Json(app.node.genesis().as_ref().clone())
}

async fn issue(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Json<IssueRequest>, JsonRejection>,
) -> Result<Json<IssueResponse>, ApiError> {
    authorize(&app, &headers)?;
    let Json(req) = body.map_err(rejection)?;
    Ok(Json(issue::issue(&app.node, req).await?))
}

async fn partition(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Json<PartitionRequest>, JsonRejection>,
) -> Result<Json<PartitionResponse>, ApiError> {
    authorize(&app, &headers)?;
    let Json(req) = body.map_err(rejection)?;
    Ok(Json(admin::partition(&app.node, req.isolated).await?))
}

async fn backup(
    State(app): Shared,
    headers: HeaderMap,
    body: Result<Json<BackupRequest>, JsonRejection>,
) -> Result<Json<BackupResponse>, ApiError> {
    authorize(&app, &headers)?;
    let Json(req) = body.map_err(rejection)?;
    Ok(Json(admin::backup(&app.node, req.dir).await?))
}

async fn redeem(
    State(app): Shared,
    body: Result<Json<RedeemRequest>, JsonRejection>,
) -> Result<Json<RedeemResponse>, ApiError> {
    let Json(req) = body.map_err(rejection)?;
    Ok(Json(app.redeemer.redeem(&req.order).await?))
}

async fn balance(
    State(app): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Json<Balance>, ApiError> {
    let member = member_to_read(&app, &headers, &uri, &id)?;
    Ok(Json(views::balance(&app.node, member).await?))
}

async fn history(
    State(app): Shared,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Json<History>, ApiError> {
    let member = member_to_read(&app, &headers, &uri, &id)?;
    Ok(Json(views::history(&app.node, member).await?))
}

/// Most log entries answered per request.
const MAX_LOG_RANGE: u64 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    limit: Option<u64>,
}

async fn log_range(
    State(app): Shared,
    headers: HeaderMap,
    Path(partner): Path<String>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LogRange>, ApiError> {
    authorize_read(&app, &headers, None)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let partner = PartnerId::from_hex(&partner)
        .map_err(|e| ApiError::bad_request(format!("partner id: {e}")))?;
    let limit = q.limit.unwrap_or(MAX_LOG_RANGE).min(MAX_LOG_RANGE) as usize;
    Ok(Json(
        views::log_range(&app.node, partner, q.from, limit).await?,
    ))
}

type EpochPath = Result<Path<Epoch>, axum::extract::rejection::PathRejection>;

fn epoch_of(path: EpochPath) -> Result<Epoch, ApiError> {
    path.map(|Path(e)| e)
        .map_err(|e| ApiError::bad_request(format!("epoch: {}", e.body_text())))
}

async fn checkpoint(
    State(app): Shared,
    epoch: EpochPath,
) -> Result<Json<SealedCheckpoint>, ApiError> {
    Ok(Json(audit::checkpoint(&app.node, epoch_of(epoch)?).await?))
}

async fn settlement(
    State(app): Shared,
    epoch: EpochPath,
) -> Result<Json<SettlementView>, ApiError> {
    Ok(Json(audit::settlement(&app.node, epoch_of(epoch)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    #[serde(default)]
    epoch: Option<Epoch>,
}

async fn proof(
    State(app): Shared,
    headers: HeaderMap,
    Path(record): Path<String>,
    query: Result<Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordProof>, ApiError> {
    authorize_read(&app, &headers, None)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let record =
        Hash::from_hex(&record).map_err(|e| ApiError::bad_request(format!("record id: {e}")))?;
    Ok(Json(audit::prove(&app.node, record, q.epoch).await?))
}
