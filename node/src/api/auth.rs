//! Who may call what (docs/threat-model.md, "Privacy"): partner operations need the partner's
//! bearer token; reads of members' data, logs and proofs need a reader: the partner's token, one
//! of its auditors' tokens, or, for a member's own balance and history, the member's signature on
//! the request (`coalition_core::read_auth`). Everything else is public: status, genesis,
//! checkpoints, settlement statements, health and metrics name no member.

use super::error::ApiError;
use super::App;
use axum::http::{header, HeaderMap};
use coalition_client::auth::parse_member_read_header;
use coalition_core::read_auth::{verify_member_read, ReadTarget};
use coalition_core::record::MemberId;

/// Requires the partner's bearer token.
pub(super) fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(given) if same(given, &app.token) => Ok(()),
        given => {
            // An operator's trail of who tried to issue without the right to; never the token.
            let why = if given.is_some() {
                "a wrong token"
            } else {
                "no token"
            };
            tracing::warn!(target: "audit", "refused a partner operation with {why}");
            Err(ApiError::unauthorized())
        }
    }
}

/// Requires a reader: the partner's or an auditor's token, or, when `member` names whose data at
/// which request path, that member's signature on this request.
pub(super) fn authorize_read(
    app: &App,
    headers: &HeaderMap,
    member: Option<(&MemberId, &str)>,
) -> Result<(), ApiError> {
    if let Some(given) = bearer(headers) {
        let known = std::iter::once(&app.token).chain(&app.auditor_tokens);
        // Every token is compared, so the time taken does not say which one nearly matched.
        let matched = known.fold(false, |hit, t| same(given, t) | hit);
        if matched {
            return Ok(());
        }
        tracing::warn!(target: "audit", "refused a read with a wrong token");
        return Err(ApiError::unauthorized_read(
            "wrong token: members' data, logs and proofs need this partner's token or one of its \
             auditors' tokens",
        ));
    }
    let Some((member, path)) = member else {
        return Err(ApiError::unauthorized_read(
            "logs and proofs need this partner's token or one of its auditors' tokens: \
             `Authorization: Bearer <token>`",
        ));
    };
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_member_read_header);
    let Some((time, signature)) = signed else {
        return Err(ApiError::unauthorized_read(
            "a member's data need the member's signature on the request (`coalition member \
             balance --wallet FILE` signs it), or a partner's or auditor's token",
        ));
    };
    let node = &app.node;
    let (genesis, me) = (node.genesis().hash(), node.me());
    let target = ReadTarget {
        genesis: &genesis,
        node: &me,
        path,
    };
    verify_member_read(member, target, time, &signature, node.now())
        .map_err(ApiError::unauthorized_read)
}

/// The bearer token of the request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Constant-time comparison of a token.
fn same(given: &str, want: &str) -> bool {
    let (given, want) = (given.as_bytes(), want.as_bytes());
    given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
