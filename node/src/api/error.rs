//! The API's errors: one status and one stable code per cause. Every node error is mapped here,
//! once (`impl From<NodeError> for ApiError`); handlers never pick a status themselves.

use crate::error::NodeError;
use crate::writer::{AppendError, WriterError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coalition_client::types::{ErrorBody, ErrorDetail};
use coalition_core::cert::CertError;

/// An error as the API answers it: `{"error": {"code": ..., "message": ...}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable, snake_case code.
    pub code: &'static str,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl ToString) -> ApiError {
        ApiError {
            status,
            code,
            message: message.to_string(),
        }
    }

    /// A malformed request (a path, a query, a body); nothing changed.
    pub fn bad_request(message: impl ToString) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A missing or wrong bearer token on a partner operation.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API token: partner operations need `Authorization: Bearer <token>`",
        )
    }

    /// A read of members' data, logs or proofs without a credential that allows it.
    pub fn unauthorized_read(why: impl ToString) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why)
    }

    /// A body over the limit; nothing was read past it.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// No such route.
    pub fn no_route() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route; see /v1/status",
        )
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        use StatusCode as S;
        let (status, code) = match &e {
            e if e.is_storage_failure() => (S::SERVICE_UNAVAILABLE, "storage_failed"),
            NodeError::Invalid(_) | NodeError::Rejected(_) => (S::BAD_REQUEST, "bad_request"),
            NodeError::NotFound(_) => (S::NOT_FOUND, "not_found"),
            NodeError::OrderRefused(CertError::MemberSignature { .. }) => {
                (S::UNPROCESSABLE_ENTITY, "bad_member_signature")
            }
            NodeError::OrderRefused(_) => (S::UNPROCESSABLE_ENTITY, "malformed"),
            NodeError::RefusedBy { code, .. } => (S::UNPROCESSABLE_ENTITY, code.as_str()),
            NodeError::OrderTooLate { .. } => (S::UNPROCESSABLE_ENTITY, "order_too_late"),
            NodeError::NoQuorum { .. } => (S::SERVICE_UNAVAILABLE, "no_quorum"),
            NodeError::ReferenceReused { .. } => (S::CONFLICT, "reference_reused"),
            NodeError::Rejoining => (S::SERVICE_UNAVAILABLE, "rejoining"),
            // Try again later: another request has the order, the node is stopping (a certificate
            // that could not be appended then stays in flight), or it is too far behind to take more.
            NodeError::Busy { .. }
            | NodeError::StorageFailed { .. }
            | NodeError::ShuttingDown
            | NodeError::NotAppended(AppendError::Writer(WriterError::ShuttingDown))
            | NodeError::Writer(WriterError::PendingFull { .. }) => {
                (S::SERVICE_UNAVAILABLE, "unavailable")
            }
            NodeError::NotAppended(_)
            | NodeError::Writer(_)
            | NodeError::Store(_)
            | NodeError::Inconsistent(_)
            | NodeError::Proof(_)
            | NodeError::Merkle(_)
            | NodeError::Overflow(_)
            | NodeError::Invariant { .. }
            | NodeError::Task(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match status {
            S::INTERNAL_SERVER_ERROR => format!("internal error: {e}"),
            _ => e.to_string(),
        };
        ApiError::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, error = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// Turns axum's own rejections (bad JSON, wrong content type, too large) into our JSON errors.
pub(super) fn rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::too_large(super::MAX_BODY_BYTES);
    }
    ApiError::bad_request(format!("invalid request body: {}", r.body_text()))
}
