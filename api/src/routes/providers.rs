//! Providers: the carriers (admin only). A call is admitted when its source address
//! falls in a provider's `allowed_sources`; the outbound target and credentials are
//! kept for calls towards the carrier. On first start the platform gets a provider
//! `local` that admits 127.0.0.1 only, so the quickstart works on loopback.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Page, St};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, resource_id};
use crate::store::customers;
use crate::store::owned;
use crate::store::page::PageQuery;
use crate::store::providers::{self, Provider, parse_cidr};

/// The body of `POST /providers`; the same fields, all optional, update one.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProviderBody {
    /// `sip` (the default and only type).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The outbound target's host.
    pub hostname: Option<String>,
    /// The outbound target's port; 0 (the default) finds it by DNS (RFC 3263: the
    /// name's SRV records, else 5060).
    pub port: Option<i64>,
    /// `udp` or `tcp`; empty (the default) lets DNS choose (RFC 3263: NAPTR, then
    /// SRV for UDP and TCP, else UDP).
    pub transport: Option<String>,
    /// Prepended to dialled numbers.
    pub tech_prefix: Option<String>,
    /// Appended to dialled numbers.
    pub tech_postfix: Option<String>,
    /// Headers added to outbound INVITEs.
    pub tech_headers: Option<BTreeMap<String, String>>,
    /// CIDR blocks (or single addresses) its calls may come from.
    pub allowed_sources: Option<Vec<String>>,
    /// Digest username for the carrier's challenges.
    pub auth_username: Option<String>,
    /// Digest password (write-only).
    pub auth_password: Option<String>,
    /// The most calls from it up at once (0, the default: no limit); more get 503.
    pub max_concurrent_calls: Option<i64>,
    /// A name.
    pub name: Option<String>,
    /// Notes.
    pub detail: Option<String>,
}

/// Applies a body's fields to a provider, checking each.
fn apply(p: &mut Provider, body: ProviderBody) -> ApiResult<()> {
    if let Some(kind) = body.kind
        && kind != "sip"
    {
        return Err(ApiError::invalid("type", format!("{kind:?} is not sip")));
    }
    if let Some(h) = body.hostname {
        if h.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::invalid("hostname", "must not contain spaces"));
        }
        p.hostname = h;
    }
    if let Some(port) = body.port {
        if !(0..=65_535).contains(&port) {
            return Err(ApiError::invalid(
                "port",
                "must be 1 to 65535, or 0 to find it by DNS (SRV)",
            ));
        }
        p.port = port;
    }
    if let Some(t) = body.transport {
        if !matches!(t.as_str(), "udp" | "tcp" | "tls" | "") {
            return Err(ApiError::invalid(
                "transport",
                format!("{t:?} is not udp, tcp, tls, or empty (chosen by DNS)"),
            ));
        }
        p.transport = t;
    }
    if let Some(headers) = body.tech_headers {
        for (name, value) in &headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(&b));
            if !token || value.contains(['\r', '\n', '\0']) {
                return Err(ApiError::invalid(
                    "tech_headers",
                    format!("{name:?} is not a header name and a one-line value"),
                ));
            }
        }
        p.tech_headers = headers;
    }
    if let Some(n) = body.max_concurrent_calls {
        if n < 0 {
            return Err(ApiError::invalid(
                "max_concurrent_calls",
                "must be 0 (no limit) or more",
            ));
        }
        p.max_concurrent_calls = n;
    }
    if let Some(sources) = body.allowed_sources {
        p.allowed_sources = sources
            .iter()
            .map(|s| parse_cidr(s).map(|n| n.to_string()))
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::invalid("allowed_sources", e))?;
    }
    let fields = [
        (&mut p.tech_prefix, body.tech_prefix, "tech_prefix"),
        (&mut p.tech_postfix, body.tech_postfix, "tech_postfix"),
        (&mut p.auth_username, body.auth_username, "auth_username"),
        (&mut p.auth_password, body.auth_password, "auth_password"),
        (&mut p.name, body.name, "name"),
        (&mut p.detail, body.detail, "detail"),
    ];
    for (slot, value, field) in fields {
        if let Some(v) = value {
            if v.contains(['\r', '\n', '\0']) {
                return Err(ApiError::invalid(field, "must be one line"));
            }
            *slot = v;
        }
    }
    Ok(())
}

fn blank(customer_id: &str, tm_create: String) -> Provider {
    Provider {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: customer_id.to_owned(),
        kind: "sip".to_owned(),
        hostname: String::new(),
        port: 0,
        max_concurrent_calls: 0,
        health_status: "unknown".into(),
        health_checked_at: None,
        transport: String::new(),
        tech_prefix: String::new(),
        tech_postfix: String::new(),
        tech_headers: BTreeMap::new(),
        allowed_sources: Vec::new(),
        auth_username: String::new(),
        auth_password: String::new(),
        name: String::new(),
        detail: String::new(),
        tm_create,
        tm_update: None,
        tm_delete: None,
    }
}

/// Writes a new provider with its event.
async fn insert_provider(state: &AppState, p: &Provider) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    providers::insert(&mut *tx, p).await?;
    let event = state
        .events
        .event(&p.customer_id, "provider", &p.id, "created", p);
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(())
}

/// Create a provider (admin only).
#[utoipa::path(post, path = "/providers", tag = "providers", request_body = ProviderBody,
    responses((status = 200, body = Provider), (status = 400), (status = 403)))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<ProviderBody>,
) -> ApiResult<Json<Provider>> {
    caller.require_admin()?;
    let mut p = blank(&caller.customer_id, state.stamps.unique());
    apply(&mut p, body)?;
    insert_provider(&state, &p).await?;
    Ok(Json(p))
}

/// List providers (admin only), newest first.
#[utoipa::path(get, path = "/providers", tag = "providers",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Provider>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Provider>>> {
    caller.require_admin()?;
    let items = owned::list::<Provider>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |p| &p.tm_create)))
}

/// Get a provider (admin only).
#[utoipa::path(get, path = "/providers/{id}", tag = "providers",
    responses((status = 200, body = Provider), (status = 404)))]
pub async fn get_one(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Provider>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    super::owned_or_404::<Provider>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Update a provider (admin only): absent fields are kept.
#[utoipa::path(put, path = "/providers/{id}", tag = "providers", request_body = ProviderBody,
    responses((status = 200, body = Provider), (status = 400), (status = 404)))]
pub async fn update(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProviderBody>,
) -> ApiResult<Json<Provider>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut p = super::owned_or_404::<Provider>(&mut *tx, &caller.customer_id, id).await?;
    apply(&mut p, body)?;
    p.tm_update = Some(state.stamps.now());
    providers::update(&mut *tx, &p).await?;
    let event = state
        .events
        .event(&p.customer_id, "provider", &p.id, "updated", &p);
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(p))
}

/// Delete a provider (admin only): its calls are refused from then on.
#[utoipa::path(delete, path = "/providers/{id}", tag = "providers",
    responses((status = 200, body = Provider), (status = 404)))]
pub async fn delete(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Provider>> {
    caller.require_admin()?;
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut p = super::owned_or_404::<Provider>(&mut *tx, &caller.customer_id, id).await?;
    let now = state.stamps.now();
    owned::delete::<Provider>(&mut *tx, &caller.customer_id, id, &now).await?;
    p.tm_delete = Some(now.clone());
    p.tm_update = Some(now);
    let event = state
        .events
        .event(&p.customer_id, "provider", &p.id, "deleted", &p);
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(p))
}

/// Makes the `local` provider (127.0.0.1 only) when there has never been one.
pub async fn bootstrap_local(state: &AppState) -> ApiResult<()> {
    if providers::count_all(state.store.pool()).await? > 0 {
        return Ok(());
    }
    let Some(admin) = customers::admin_id(state.store.pool()).await? else {
        return Ok(());
    };
    let mut p = blank(&admin, state.stamps.unique());
    p.name = "local".to_owned();
    p.detail = "calls from this host (made on first start)".to_owned();
    p.hostname = "127.0.0.1".to_owned();
    p.allowed_sources = vec!["127.0.0.1/32".to_owned()];
    insert_provider(state, &p).await
}
