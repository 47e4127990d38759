//! Activeflows: read the flows running (and run) for the caller's calls, stop one,
//! resume one waiting at a `block` action, or delete one.

use axum::Json;
use axum::extract::Path;

use super::{Page, St};
use crate::FlowControl;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, resource_id};
use crate::store::activeflows::Activeflow;
use crate::store::owned;
use crate::store::page::PageQuery;

/// List activeflows, newest first.
#[utoipa::path(get, path = "/activeflows", tag = "activeflows",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Activeflow>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Activeflow>>> {
    let items = owned::list::<Activeflow>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |a| &a.tm_create)))
}

/// Get an activeflow, with its executed actions.
#[utoipa::path(get, path = "/activeflows/{id}", tag = "activeflows",
    responses((status = 200, body = Activeflow), (status = 404)))]
pub async fn get_one(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Activeflow>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Activeflow>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Delete an activeflow: a running one is stopped first (its call goes on without
/// it), then the record is gone from the API (`activeflow_deleted`).
#[utoipa::path(delete, path = "/activeflows/{id}", tag = "activeflows",
    responses((status = 200, body = Activeflow), (status = 400), (status = 404)))]
pub async fn delete(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Activeflow>> {
    let id = resource_id(&id)?;
    let flow = super::delete_owned::<Activeflow>(
        &state,
        &caller.customer_id,
        id,
        |_| Ok(()),
        |a, now| {
            a.tm_delete = Some(now.clone());
            a.tm_update = Some(now);
        },
    )
    .await?;
    if flow.status != "ended"
        && !state
            .calls
            .get()
            .is_some_and(|c| c.activeflow(id, FlowControl::Stop))
    {
        tracing::debug!(
            activeflow_id = id,
            "stop: the activeflow is not running on this node"
        );
    }
    Ok(Json(flow))
}

/// Sends `what` to a running activeflow of the caller's.
async fn control(
    state: &St,
    caller: &Caller,
    id: &str,
    what: FlowControl,
) -> ApiResult<Json<Activeflow>> {
    let id = resource_id(id)?;
    let flow =
        super::owned_or_404::<Activeflow>(state.store.pool(), &caller.customer_id, id).await?;
    if flow.status != "running" {
        return Err(ApiError::invalid("id", "the activeflow has ended"));
    }
    if !state.calls.get().is_some_and(|c| c.activeflow(id, what)) {
        return Err(ApiError::invalid(
            "id",
            "the activeflow is not running on this server",
        ));
    }
    Ok(Json(flow))
}

/// Stop a running activeflow (its call goes on without it).
#[utoipa::path(post, path = "/activeflows/{id}/stop", tag = "activeflows",
    responses((status = 200, body = Activeflow), (status = 400), (status = 404)))]
pub async fn stop(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Activeflow>> {
    control(&state, &caller, &id, FlowControl::Stop).await
}

/// Resume an activeflow waiting at a `block` action.
#[utoipa::path(post, path = "/activeflows/{id}/execute", tag = "activeflows",
    responses((status = 200, body = Activeflow), (status = 400), (status = 404)))]
pub async fn execute(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Activeflow>> {
    control(&state, &caller, &id, FlowControl::Execute).await
}
