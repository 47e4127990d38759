//! The HTTP surface: `/v1.0/...` resources, auth, health, metrics, the OpenAPI
//! document and the WebSocket.
//!
//! Resource routes are registered through utoipa-axum, so the OpenAPI document served
//! at `/v1.0/openapi.json` is generated from the same handlers and cannot drift.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::Server;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::MAX_BODY;
use crate::store::owned::{self, Owned};

pub mod accesskeys;
pub mod activeflows;
pub mod call_create;
pub mod calls;
pub mod customers;
pub mod dial_routes;
pub mod flows;
pub mod groupcalls;
pub mod login;
pub mod media_stream;
pub mod numbers;
pub mod ops;
pub mod providers;
pub mod recordings;

/// A page of a list: `{"result": [...], "next_page_token": "..."}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, newest first; never null.
    pub result: Vec<T>,
    /// The cursor for the next page: the last item's `tm_create`; "" when empty.
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// A page of `items`, the cursor read from the last one by `tm_create`.
    pub fn new(result: Vec<T>, tm_create: impl Fn(&T) -> &str) -> Self {
        let next_page_token = result
            .last()
            .map(|t| tm_create(t).to_owned())
            .unwrap_or_default();
        Self {
            result,
            next_page_token,
        }
    }
}

/// The OpenAPI document's fixed parts.
#[derive(OpenApi)]
#[openapi(
    info(title = "voipbin-rs API", description = "VoIPBIN's /v1.0 REST API, served natively."),
    tags(
        (name = "customers", description = "Tenants and their webhook settings"),
        (name = "accesskeys", description = "API credentials"),
        (name = "auth", description = "Login"),
        (name = "flows", description = "Flows of actions"),
        (name = "numbers", description = "Numbers and the flows that handle them"),
        (name = "providers", description = "Carriers (admin only)"),
        (name = "routes", description = "Which carriers take a customer's outbound calls (admin only)"),
        (name = "calls", description = "Calls"),
        (name = "groupcalls", description = "Destinations rung together or one after another"),
        (name = "recordings", description = "Recordings of calls"),
        (name = "activeflows", description = "Flows running for calls"),
        (name = "ops", description = "Health"),
    )
)]
struct ApiDoc;

/// Builds the whole router.
pub fn router(state: AppState) -> Router {
    let (resources, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(customers::create, customers::list))
        .routes(routes!(customers::get_one, customers::delete))
        .routes(routes!(customers::get_self, customers::update_self))
        .routes(routes!(accesskeys::create, accesskeys::list))
        .routes(routes!(
            accesskeys::get_one,
            accesskeys::update,
            accesskeys::delete
        ))
        .routes(routes!(flows::create, flows::list))
        .routes(routes!(flows::get_one, flows::update, flows::delete))
        .routes(routes!(numbers::create, numbers::list))
        .routes(routes!(numbers::get_one, numbers::update, numbers::delete))
        .routes(routes!(numbers::update_flow_ids))
        .routes(routes!(providers::create, providers::list))
        .routes(routes!(calls::list, call_create::create))
        .routes(routes!(groupcalls::list, groupcalls::create))
        .routes(routes!(groupcalls::get_one, groupcalls::delete))
        .routes(routes!(groupcalls::hangup))
        .routes(routes!(calls::get_one, calls::delete))
        .routes(routes!(calls::hangup))
        .routes(routes!(calls::talk))
        .routes(routes!(calls::recording_start))
        .routes(routes!(calls::recording_stop))
        .routes(routes!(calls::mute, calls::unmute))
        .routes(routes!(calls::hold, calls::unhold))
        .routes(routes!(calls::moh_on, calls::moh_off))
        .routes(routes!(calls::silence_on, calls::silence_off))
        .routes(routes!(recordings::list))
        .routes(routes!(recordings::get_one, recordings::delete))
        .routes(routes!(recordings::file))
        .routes(routes!(activeflows::list))
        .routes(routes!(activeflows::get_one, activeflows::delete))
        .routes(routes!(activeflows::stop))
        .routes(routes!(activeflows::execute))
        .routes(routes!(
            providers::get_one,
            providers::update,
            providers::delete
        ))
        .routes(routes!(dial_routes::create, dial_routes::list))
        .routes(routes!(
            dial_routes::get_one,
            dial_routes::update,
            dial_routes::delete
        ))
        .routes(routes!(media_stream::upgrade))
        .routes(routes!(login::login))
        .routes(routes!(ops::health))
        .split_for_parts();
    doc.servers = Some(vec![Server::new("/v1.0")]);
    let doc = std::sync::Arc::new(doc);
    let v1 = resources
        .route(
            "/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .route("/ws", get(crate::events::ws::upgrade));
    Router::new()
        .nest("/v1.0", v1)
        .route("/auth/login", axum::routing::post(login::login))
        .route("/ping", get(ops::ping))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(count_requests))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// Counts requests by route and status for `/metrics`.
async fn count_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("voipbin_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// A handler's state, re-exported for the resource modules.
pub(crate) type St = State<AppState>;

/// Soft-deletes the caller's `R` with id `id` and announces `<name>_deleted`, in one
/// transaction; `stamp` marks the returned copy deleted at the given time. `check`
/// may refuse first (a recording still being written).
pub(crate) async fn delete_owned<R: Owned + Serialize>(
    state: &AppState,
    customer_id: &str,
    id: &str,
    check: impl FnOnce(&R) -> Result<(), ApiError>,
    stamp: impl FnOnce(&mut R, String),
) -> Result<R, ApiError> {
    let mut tx = state.store.begin().await?;
    let mut row = owned_or_404::<R>(&mut *tx, customer_id, id).await?;
    check(&row)?;
    let now = state.stamps.now();
    owned::delete::<R>(&mut *tx, customer_id, id, &now).await?;
    stamp(&mut row, now);
    let event = state
        .events
        .event(customer_id, R::NAME, id, "deleted", &row);
    state.events.commit(tx, event).await?;
    Ok(row)
}

/// The caller's live resource with this id, or a 404 naming its kind: another
/// customer's resource is not found either.
pub(crate) async fn owned_or_404<'e, R: Owned>(
    ex: impl sqlx::Executor<'e, Database = sqlx::Any>,
    customer_id: &str,
    id: &str,
) -> Result<R, ApiError> {
    owned::get::<R>(ex, customer_id, id)
        .await?
        .ok_or(ApiError::NotFound(R::NAME))
}
