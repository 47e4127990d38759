//! Access keys of the calling customer. A key is shown once, in the answer to its
//! creation.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Page, St};
use crate::auth::{self, Caller};
use crate::clock::format_micros;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, resource_id};
use crate::store::accesskeys::{self, Accesskey};
use crate::store::owned;
use crate::store::page::PageQuery;

/// The body of `POST /accesskeys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateAccesskey {
    /// A name.
    #[serde(default)]
    pub name: String,
    /// Notes.
    #[serde(default)]
    pub detail: String,
    /// Lifetime in seconds; absent or 0 for a key that does not expire.
    #[serde(default)]
    pub expire: i64,
}

/// The body of `PUT /accesskeys/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateAccesskey {
    /// A name.
    pub name: Option<String>,
    /// Notes.
    pub detail: Option<String>,
}

/// Create an access key; the answer holds the key itself, shown this once.
#[utoipa::path(post, path = "/accesskeys", tag = "accesskeys", request_body = CreateAccesskey,
    responses((status = 200, body = Accesskey), (status = 400)))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<CreateAccesskey>,
) -> ApiResult<Json<Accesskey>> {
    if body.expire < 0 {
        return Err(ApiError::invalid(
            "expire",
            "must be a number of seconds, 0 for never",
        ));
    }
    let token = auth::new_token();
    let expire = (body.expire > 0).then(|| {
        format_micros(
            state
                .stamps
                .now_micros()
                .saturating_add(body.expire.saturating_mul(1_000_000)),
        )
    });
    let mut key = Accesskey {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: caller.customer_id.clone(),
        name: body.name,
        detail: body.detail,
        token: None,
        token_prefix: auth::token_prefix(&token),
        tm_expire: expire,
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    let mut tx = state.store.begin().await?;
    crate::store::owned::check_quota::<Accesskey>(&mut *tx, &key.customer_id, state.quota).await?;
    accesskeys::insert(&mut *tx, &key, &auth::hash_token(&token)).await?;
    let event = state
        .events
        .event(&key.customer_id, "accesskey", &key.id, "created", &key);
    state.events.commit(tx, event).await?;
    key.token = Some(token);
    Ok(Json(key))
}

/// List the caller's access keys (without the keys themselves).
#[utoipa::path(get, path = "/accesskeys", tag = "accesskeys",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Accesskey>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Accesskey>>> {
    let items = owned::list::<Accesskey>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |k| &k.tm_create)))
}

/// Get one access key.
#[utoipa::path(get, path = "/accesskeys/{id}", tag = "accesskeys",
    responses((status = 200, body = Accesskey), (status = 404)))]
pub async fn get_one(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Accesskey>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Accesskey>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Rename an access key.
#[utoipa::path(put, path = "/accesskeys/{id}", tag = "accesskeys", request_body = UpdateAccesskey,
    responses((status = 200, body = Accesskey), (status = 404)))]
pub async fn update(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAccesskey>,
) -> ApiResult<Json<Accesskey>> {
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut key = super::owned_or_404::<Accesskey>(&mut *tx, &caller.customer_id, id).await?;
    if let Some(name) = body.name {
        key.name = name;
    }
    if let Some(detail) = body.detail {
        key.detail = detail;
    }
    key.tm_update = Some(state.stamps.now());
    accesskeys::update(&mut *tx, &key).await?;
    let event = state
        .events
        .event(&key.customer_id, "accesskey", &key.id, "updated", &key);
    state.events.commit(tx, event).await?;
    Ok(Json(key))
}

/// Revoke an access key: it stops working at once.
#[utoipa::path(delete, path = "/accesskeys/{id}", tag = "accesskeys",
    responses((status = 200, body = Accesskey), (status = 404)))]
pub async fn delete(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Accesskey>> {
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut key = super::owned_or_404::<Accesskey>(&mut *tx, &caller.customer_id, id).await?;
    let now = state.stamps.now();
    owned::delete::<Accesskey>(&mut *tx, &caller.customer_id, id, &now).await?;
    key.tm_delete = Some(now.clone());
    key.tm_update = Some(now);
    let event = state
        .events
        .event(&key.customer_id, "accesskey", &key.id, "deleted", &key);
    state.events.commit(tx, event).await?;
    state.auth.forget_all();
    Ok(Json(key))
}
