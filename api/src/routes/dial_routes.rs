//! Routes (admin only): which providers carry a customer's outbound calls. A
//! dialled number goes out through the customer's routes whose `target` prefixes
//! it (or is `all`), lowest `priority` first, then through the default routes (no
//! `customer_id`); the next one is tried when a carrier fails. With no route at
//! all, every provider with a hostname is tried, oldest first.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Page, St};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, resource_id};
use crate::store::owned;
use crate::store::page::PageQuery;
use crate::store::providers::Provider;
use crate::store::routes::{self, Route};

/// The body of `POST /routes`; the same fields, all optional, update one.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RouteBody {
    /// The customer whose calls it carries; empty or absent for a default route.
    pub customer_id: Option<String>,
    /// The provider that carries them (required to create).
    pub provider_id: Option<String>,
    /// Lower first (0 to 10000; default 1).
    pub priority: Option<i64>,
    /// A prefix of the numbers' digits (`1`, `4420`), or `all` (the default).
    pub target: Option<String>,
    /// A name.
    pub name: Option<String>,
    /// Notes.
    pub detail: Option<String>,
}

/// Applies a body's fields to a route, checking each.
async fn apply(state: &AppState, owner: &str, r: &mut Route, body: RouteBody) -> ApiResult<()> {
    if let Some(c) = body.customer_id {
        if !c.is_empty() {
            resource_id(&c).map_err(|_| ApiError::invalid("customer_id", "not an id"))?;
        }
        r.customer_id = c;
    }
    if let Some(p) = body.provider_id {
        let id = resource_id(&p).map_err(|_| ApiError::invalid("provider_id", "not an id"))?;
        owned::get::<Provider>(state.store.pool(), owner, id)
            .await?
            .ok_or_else(|| ApiError::invalid("provider_id", format!("no provider {p}")))?;
        r.provider_id = p;
    }
    if let Some(priority) = body.priority {
        if !(0..=10_000).contains(&priority) {
            return Err(ApiError::invalid("priority", "must be 0 to 10000"));
        }
        r.priority = priority;
    }
    if let Some(t) = body.target {
        let t = t.trim().trim_start_matches('+').to_owned();
        if t != "all" && (t.is_empty() || t.len() > 15 || !t.bytes().all(|b| b.is_ascii_digit())) {
            return Err(ApiError::invalid(
                "target",
                "must be `all` or the leading digits of numbers (1 to 15)",
            ));
        }
        r.target = t;
    }
    if let Some(n) = body.name {
        r.name = n;
    }
    if let Some(d) = body.detail {
        r.detail = d;
    }
    if r.provider_id.is_empty() {
        return Err(ApiError::invalid("provider_id", "is required"));
    }
    Ok(())
}

/// Create a route (admin only).
#[utoipa::path(post, path = "/routes", tag = "routes", request_body = RouteBody,
    responses((status = 200, body = Route), (status = 400), (status = 403)))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<RouteBody>,
) -> ApiResult<Json<Route>> {
    caller.require_admin()?;
    let mut r = Route {
        id: uuid::Uuid::now_v7().to_string(),
        owner_id: caller.customer_id.clone(),
        customer_id: String::new(),
        provider_id: String::new(),
        priority: 1,
        target: "all".into(),
        name: String::new(),
        detail: String::new(),
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    apply(&state, &caller.customer_id, &mut r, body).await?;
    let mut tx = state.store.begin().await?;
    routes::insert(&mut *tx, &r).await?;
    let event = state
        .events
        .event(&r.owner_id, "route", &r.id, "created", &r);
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(r))
}

/// List routes (admin only), newest first.
#[utoipa::path(get, path = "/routes", tag = "routes",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Route>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Route>>> {
    caller.require_admin()?;
    let items = owned::list::<Route>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |r| &r.tm_create)))
}

/// Get a route (admin only).
#[utoipa::path(get, path = "/routes/{id}", tag = "routes",
    responses((status = 200, body = Route), (status = 404)))]
pub async fn get_one(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Route>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    super::owned_or_404::<Route>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Update a route (admin only): absent fields are kept.
#[utoipa::path(put, path = "/routes/{id}", tag = "routes", request_body = RouteBody,
    responses((status = 200, body = Route), (status = 400), (status = 404)))]
pub async fn update(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RouteBody>,
) -> ApiResult<Json<Route>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    let mut r = super::owned_or_404::<Route>(state.store.pool(), &caller.customer_id, id).await?;
    apply(&state, &caller.customer_id, &mut r, body).await?;
    r.tm_update = Some(state.stamps.now());
    let mut tx = state.store.begin().await?;
    routes::update(&mut *tx, &r).await?;
    let event = state
        .events
        .event(&r.owner_id, "route", &r.id, "updated", &r);
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(r))
}

/// Delete a route (admin only).
#[utoipa::path(delete, path = "/routes/{id}", tag = "routes",
    responses((status = 200, body = Route), (status = 404)))]
pub async fn delete(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Route>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut r = super::owned_or_404::<Route>(&mut *tx, &caller.customer_id, id).await?;
    let now = state.stamps.now();
    owned::delete::<Route>(&mut *tx, &caller.customer_id, id, &now).await?;
    r.tm_delete = Some(now.clone());
    r.tm_update = Some(now);
    let event = state
        .events
        .event(&r.owner_id, "route", &r.id, "deleted", &r);
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(r))
}
