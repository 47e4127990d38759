//! Operations: health, ping and Prometheus metrics.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::St;

/// The health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// The server's version.
    pub version: String,
    /// `ok` when the database answers, else `unavailable`.
    pub database: String,
}

/// Health: the version and whether the database answers (503 when it does not).
#[utoipa::path(get, path = "/health", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(state: St) -> impl IntoResponse {
    let up = state.store.ping().await;
    let body = Health {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: if up { "ok" } else { "unavailable" }.to_owned(),
    };
    (
        if up {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// `GET /ping`, as the original has it.
pub async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({"message": "pong"}))
}

/// `GET /metrics` in Prometheus text format, for the admin only (a scraper sends
/// the admin's key as `Authorization: Bearer`): the counters tell how busy the
/// platform is and who is refused.
pub async fn metrics(
    state: St,
    caller: crate::auth::Caller,
) -> Result<impl IntoResponse, crate::error::ApiError> {
    caller.require_admin()?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}
