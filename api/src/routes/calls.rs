//! Calls: read the caller's calls, and hang a live one up.

use axum::Json;
use axum::extract::Path;

use super::{Page, St};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, resource_id};
use crate::store::calls::Call;
use crate::store::owned;
use crate::store::page::PageQuery;

/// List calls, newest first.
#[utoipa::path(get, path = "/calls", tag = "calls",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Call>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Call>>> {
    let items = owned::list::<Call>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |c| &c.tm_create)))
}

/// Get a call.
#[utoipa::path(get, path = "/calls/{id}", tag = "calls", responses((status = 200, body = Call), (status = 404)))]
pub async fn get_one(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Call>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Hang up a live call; `call_hungup` follows once it has ended.
#[utoipa::path(post, path = "/calls/{id}/hangup", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn hangup(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let id = resource_id(&id)?;
    let call = super::owned_or_404::<Call>(state.store.pool(), &caller.customer_id, id).await?;
    if call.status == "hangup" {
        return Err(ApiError::invalid("id", "the call has already hung up"));
    }
    let live = state.calls.get().is_some_and(|c| c.hangup(id));
    if !live {
        return Err(ApiError::invalid(
            "id",
            "the call is not live on this server",
        ));
    }
    Ok(Json(call))
}
