//! One error type for every handler, each variant mapped to one HTTP status and a stable code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coalition_client::types::{ErrorBody, ErrorDetail};

/// What an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong bearer token on a partner operation.
    #[error("missing or wrong API token: partner operations need `Authorization: Bearer <token>`")]
    Unauthorized,
    /// The request is malformed or breaks a rule; nothing changed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the API accepts; nothing was read past the limit.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The thing asked for does not exist here.
    #[error("{0}")]
    NotFound(String),
    /// A partner refused to vote, with its reason code; nothing changed.
    #[error("redemption refused: {message}")]
    Refused {
        /// Stable reason code from the vote rule.
        code: String,
        /// Explanation.
        message: String,
    },
    /// The request reuses an identifier that already names something else (a receipt reference
    /// on another issue); nothing changed.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// Too few partners answered.
    #[error("no quorum: {got} of {needed} votes ({detail})")]
    NoQuorum {
        /// Votes gathered.
        got: usize,
        /// Votes needed.
        needed: usize,
        /// Who failed and why.
        detail: String,
    },
    /// The node is not ready for this (e.g. still catching up).
    #[error("{0}")]
    Unavailable(String),
    /// We failed (storage, a bug). Logged; the caller may retry.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Refused { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code.as_str()),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::NoQuorum { .. } => (StatusCode::SERVICE_UNAVAILABLE, "no_quorum"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message: self.to_string(),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// Turns axum's own rejections (bad JSON, wrong content type, too large) into our JSON errors.
pub fn rejection(r: axum::extract::rejection::JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge {
            limit: super::MAX_BODY_BYTES,
        };
    }
    ApiError::BadRequest(format!("invalid request body: {}", r.body_text()))
}
