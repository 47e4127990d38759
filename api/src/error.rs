//! The API's error type and its one mapping to HTTP: VoIPBIN's
//! `{"error":{"status","reason","message"}}` body (reference section 3, "Error body").

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Everything a request can fail with, by cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed; names the field at fault.
    #[error("{message}")]
    InvalidArgument {
        /// UPPER_SNAKE reason, for example INVALID_JSON_BODY.
        reason: &'static str,
        /// What is wrong, naming the field.
        message: String,
        /// Per-item detail, for example each finding in a flow.
        details: Option<Value>,
    },
    /// No credentials were given.
    #[error("authentication required: give ?accesskey=, ?token= or Authorization: Bearer")]
    AuthenticationRequired,
    /// The credentials given are wrong, expired or revoked.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The caller may not do this (admin-only routes).
    #[error("{0}")]
    PermissionDenied(String),
    /// The resource does not exist, or belongs to another customer.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The body is larger than the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Too many attempts, or a quota is used up (429, with Retry-After when waiting
    /// helps).
    #[error("{message}")]
    Exhausted {
        /// What is used up.
        message: String,
        /// Seconds after which a new attempt may succeed.
        retry_after: Option<u64>,
    },
    /// The service cannot do it now (503).
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error("storage error: {0}")]
    Storage(#[from] sqlx::Error),
    /// Our bug or an infrastructure fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with reason INVALID_ARGUMENT naming `field`.
    pub fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::InvalidArgument {
            reason: "INVALID_ARGUMENT",
            message: format!("{field}: {message}"),
            details: None,
        }
    }

    /// (HTTP status, canonical status, reason) for this error.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::InvalidArgument { reason, .. } => {
                (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", reason)
            }
            Self::AuthenticationRequired => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "AUTHENTICATION_REQUIRED",
            ),
            Self::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "INVALID_CREDENTIALS",
            ),
            Self::PermissionDenied(_) => (
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "PERMISSION_DENIED",
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND", "RESOURCE_NOT_FOUND"),
            Self::AlreadyExists(_) => (StatusCode::CONFLICT, "ALREADY_EXISTS", "ALREADY_EXISTS"),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_ARGUMENT",
                "REQUEST_TOO_LARGE",
            ),
            Self::Exhausted { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "RESOURCE_EXHAUSTED",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "SERVICE_UNAVAILABLE",
            ),
            Self::Storage(_) | Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "INTERNAL")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (http, status, reason) = self.parts();
        let message = match &self {
            // Do not leak database internals to callers; they are logged instead.
            Self::Storage(e) => {
                tracing::error!(error = %e, "storage error");
                "internal storage error".to_owned()
            }
            Self::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut error = json!({"status": status, "reason": reason, "message": message});
        if let Self::InvalidArgument {
            details: Some(d), ..
        } = &self
        {
            error["details"] = d.clone();
        }
        let mut response = (http, Json(json!({ "error": error }))).into_response();
        if let Self::Exhausted {
            retry_after: Some(secs),
            ..
        } = &self
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
