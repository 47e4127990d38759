//! Numbers: E.164 numbers and the flows that handle their calls and messages.
//! A number is unique across the platform (409 when taken).

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Page, St};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, optional_uuid, resource_id};
use crate::store::Store;
use crate::store::flows::Flow;
use crate::store::numbers::{self, Number};
use crate::store::owned;
use crate::store::page::PageQuery;

/// The body of `POST /numbers`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateNumber {
    /// E.164: `+`, a country code and up to 15 digits in all.
    pub number: String,
    /// `normal` (default) or `virtual`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The flow for incoming calls.
    pub call_flow_id: Option<String>,
    /// The flow for incoming messages.
    pub message_flow_id: Option<String>,
    /// A name.
    #[serde(default)]
    pub name: String,
    /// Notes.
    #[serde(default)]
    pub detail: String,
}

/// The body of `PUT /numbers/{id}` and `PUT /numbers/{id}/flow_ids`: absent fields
/// are kept; "" or the nil UUID clears a flow.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateNumber {
    /// The flow for incoming calls.
    pub call_flow_id: Option<String>,
    /// The flow for incoming messages.
    pub message_flow_id: Option<String>,
    /// A name.
    pub name: Option<String>,
    /// Notes.
    pub detail: Option<String>,
}

/// Checks E.164: `+`, then 2 to 15 digits, the first not 0.
pub fn check_e164(number: &str) -> ApiResult<()> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "number",
            format!("{number:?} is not E.164 (for example +14155551234)"),
        ))
    }
}

/// Checks that a flow id field names one of the caller's flows.
pub(crate) async fn checked_flow(
    store: &Store,
    customer_id: &str,
    field: &str,
    raw: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(id) = optional_uuid(field, raw)? else {
        return Ok(None);
    };
    match owned::get::<Flow>(store.pool(), customer_id, &id).await? {
        Some(_) => Ok(Some(id)),
        None => Err(ApiError::invalid(field, format!("no flow {id}"))),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Register a number.
#[utoipa::path(post, path = "/numbers", tag = "numbers", request_body = CreateNumber,
    responses((status = 200, body = Number), (status = 400), (status = 409, description = "the number is taken")))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<CreateNumber>,
) -> ApiResult<Json<Number>> {
    check_e164(&body.number)?;
    let kind = body.kind.unwrap_or_else(|| "normal".to_owned());
    if !matches!(kind.as_str(), "normal" | "virtual") {
        return Err(ApiError::invalid(
            "type",
            format!("{kind:?} is not normal or virtual"),
        ));
    }
    let store = &state.store;
    let call_flow_id = checked_flow(
        store,
        &caller.customer_id,
        "call_flow_id",
        body.call_flow_id.as_deref(),
    )
    .await?;
    let message_flow_id = checked_flow(
        store,
        &caller.customer_id,
        "message_flow_id",
        body.message_flow_id.as_deref(),
    )
    .await?;
    let number = Number {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: caller.customer_id.clone(),
        number: body.number,
        kind,
        call_flow_id,
        message_flow_id,
        name: body.name,
        detail: body.detail,
        status: "active".to_owned(),
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    let taken =
        || ApiError::AlreadyExists(format!("number {} is already registered", number.number));
    let mut tx = store.begin().await?;
    crate::store::owned::check_quota::<Number>(&mut *tx, &number.customer_id, state.quota).await?;
    if numbers::find_by_number(&mut *tx, &number.number)
        .await?
        .is_some()
    {
        return Err(taken());
    }
    numbers::insert(&mut *tx, &number).await.map_err(|e| {
        if is_unique_violation(&e) {
            taken()
        } else {
            e.into()
        }
    })?;
    let event = state.events.event(
        &number.customer_id,
        "number",
        &number.id,
        "created",
        &number,
    );
    state.events.record(&mut tx, &event).await?;
    tx.commit().await.map_err(|e| {
        if is_unique_violation(&e) {
            taken()
        } else {
            e.into()
        }
    })?;
    state.events.announce(event);
    state.routing_changed().await;
    Ok(Json(number))
}

/// List numbers, newest first.
#[utoipa::path(get, path = "/numbers", tag = "numbers",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Number>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Number>>> {
    let items = owned::list::<Number>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |n| &n.tm_create)))
}

/// Get a number.
#[utoipa::path(get, path = "/numbers/{id}", tag = "numbers", responses((status = 200, body = Number), (status = 404)))]
pub async fn get_one(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Number>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Number>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Applies an update body to a number and writes it with its event.
async fn apply_update(
    state: &St,
    caller: &Caller,
    id: &str,
    body: UpdateNumber,
) -> ApiResult<Json<Number>> {
    let id = resource_id(id)?;
    let store = &state.store;
    let mut tx = store.begin().await?;
    let mut number = super::owned_or_404::<Number>(&mut *tx, &caller.customer_id, id).await?;
    if body.call_flow_id.is_some() {
        number.call_flow_id = checked_flow(
            store,
            &caller.customer_id,
            "call_flow_id",
            body.call_flow_id.as_deref(),
        )
        .await?;
    }
    if body.message_flow_id.is_some() {
        number.message_flow_id = checked_flow(
            store,
            &caller.customer_id,
            "message_flow_id",
            body.message_flow_id.as_deref(),
        )
        .await?;
    }
    if let Some(name) = body.name {
        number.name = name;
    }
    if let Some(detail) = body.detail {
        number.detail = detail;
    }
    number.tm_update = Some(state.stamps.now());
    numbers::update(&mut *tx, &number).await?;
    let event = state.events.event(
        &number.customer_id,
        "number",
        &number.id,
        "updated",
        &number,
    );
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(number))
}

/// Update a number's flows, name and detail.
#[utoipa::path(put, path = "/numbers/{id}", tag = "numbers", request_body = UpdateNumber,
    responses((status = 200, body = Number), (status = 400), (status = 404)))]
pub async fn update(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateNumber>,
) -> ApiResult<Json<Number>> {
    apply_update(&state, &caller, &id, body).await
}

/// Update a number's flows.
#[utoipa::path(put, path = "/numbers/{id}/flow_ids", tag = "numbers", request_body = UpdateNumber,
    responses((status = 200, body = Number), (status = 400), (status = 404)))]
pub async fn update_flow_ids(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateNumber>,
) -> ApiResult<Json<Number>> {
    let body = UpdateNumber {
        name: None,
        detail: None,
        ..body
    };
    apply_update(&state, &caller, &id, body).await
}

/// Release a number (soft delete); it can be registered again.
#[utoipa::path(delete, path = "/numbers/{id}", tag = "numbers", responses((status = 200, body = Number), (status = 404)))]
pub async fn delete(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Number>> {
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut number = super::owned_or_404::<Number>(&mut *tx, &caller.customer_id, id).await?;
    let now = state.stamps.now();
    owned::delete::<Number>(&mut *tx, &caller.customer_id, id, &now).await?;
    number.status = "deleted".to_owned();
    number.tm_delete = Some(now.clone());
    number.tm_update = Some(now);
    let event = state.events.event(
        &number.customer_id,
        "number",
        &number.id,
        "deleted",
        &number,
    );
    state.events.commit(tx, event).await?;
    state.routing_changed().await;
    Ok(Json(number))
}
