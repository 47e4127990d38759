//! Flows: CRUD with load-time validation by flow-runtime. A flow with errors is
//! refused with 400 naming each action's index, id and field; nothing is written.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Page, St};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, optional_uuid, resource_id};
use crate::store::flows::{self, Flow};
use crate::store::owned;
use crate::store::page::PageQuery;

/// The body of `POST /flows` and `PUT /flows/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FlowRequest {
    /// A name.
    #[serde(default)]
    pub name: String,
    /// Notes.
    #[serde(default)]
    pub detail: String,
    /// The actions; ids are assigned where missing.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// A flow of the same customer to run when an activeflow of this one ends.
    pub on_complete_flow_id: Option<String>,
}

/// The largest flow stored, as JSON (so a page of 100 flows stays a few MB).
pub const MAX_FLOW_BYTES: usize = 128 << 10;

/// Validates the actions with flow-runtime; returns them in canonical form.
pub(crate) fn checked_actions(actions: &Value) -> ApiResult<Value> {
    let size = serde_json::to_vec(actions).map_or(0, |v| v.len());
    if size > MAX_FLOW_BYTES {
        return Err(ApiError::invalid(
            "actions",
            format!("at most {MAX_FLOW_BYTES} bytes of JSON, not {size}"),
        ));
    }
    match flow_runtime::parse_flow(actions) {
        Ok(parsed) => Ok(flow_runtime::actions_to_json(&parsed.actions)),
        Err(findings) => {
            let errors: Vec<_> = findings
                .iter()
                .filter(|f| f.severity == flow_runtime::Severity::Error)
                .collect();
            let message = errors
                .iter()
                .map(|f| {
                    let id = f
                        .action_id
                        .as_deref()
                        .map(|id| format!(" (id {id})"))
                        .unwrap_or_default();
                    format!("actions[{}]{id} {}: {}", f.index, f.field, f.message)
                })
                .collect::<Vec<_>>()
                .join("; ");
            Err(ApiError::InvalidArgument {
                reason: "INVALID_ACTION",
                message,
                details: Some(json!(findings)),
            })
        }
    }
}

/// Checks that `on_complete_flow_id` names one of the caller's flows.
async fn checked_on_complete(
    state: &St,
    caller: &Caller,
    raw: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(id) = optional_uuid("on_complete_flow_id", raw)? else {
        return Ok(None);
    };
    match owned::get::<Flow>(state.store.pool(), &caller.customer_id, &id).await? {
        Some(_) => Ok(Some(id)),
        None => Err(ApiError::invalid(
            "on_complete_flow_id",
            format!("no flow {id}"),
        )),
    }
}

/// Create a flow.
#[utoipa::path(post, path = "/flows", tag = "flows", request_body = FlowRequest,
    responses((status = 200, body = Flow), (status = 400, description = "invalid flow; details list each finding")))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<FlowRequest>,
) -> ApiResult<Json<Flow>> {
    let actions = checked_actions(&body.actions)?;
    let on_complete_flow_id =
        checked_on_complete(&state, &caller, body.on_complete_flow_id.as_deref()).await?;
    let flow = Flow {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: caller.customer_id.clone(),
        kind: "flow".to_owned(),
        name: body.name,
        detail: body.detail,
        actions,
        on_complete_flow_id,
        tm_create: state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    let mut tx = state.store.begin().await?;
    crate::store::owned::check_quota::<Flow>(&mut *tx, &flow.customer_id, state.quota).await?;
    flows::insert(&mut *tx, &flow).await?;
    let event = state
        .events
        .event(&flow.customer_id, "flow", &flow.id, "created", &flow);
    state.events.commit(tx, event).await?;
    Ok(Json(flow))
}

/// List flows, newest first.
#[utoipa::path(get, path = "/flows", tag = "flows",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Flow>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Flow>>> {
    let items = owned::list::<Flow>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |f| &f.tm_create)))
}

/// Get a flow.
#[utoipa::path(get, path = "/flows/{id}", tag = "flows", responses((status = 200, body = Flow), (status = 404)))]
pub async fn get_one(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Flow>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Flow>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Replace a flow's name, detail, actions and on_complete_flow_id. Running calls
/// keep the actions they started with.
#[utoipa::path(put, path = "/flows/{id}", tag = "flows", request_body = FlowRequest,
    responses((status = 200, body = Flow), (status = 400), (status = 404)))]
pub async fn update(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FlowRequest>,
) -> ApiResult<Json<Flow>> {
    let id = resource_id(&id)?;
    let actions = checked_actions(&body.actions)?;
    let on_complete_flow_id =
        checked_on_complete(&state, &caller, body.on_complete_flow_id.as_deref()).await?;
    let mut tx = state.store.begin().await?;
    let mut flow = super::owned_or_404::<Flow>(&mut *tx, &caller.customer_id, id).await?;
    flow.name = body.name;
    flow.detail = body.detail;
    flow.actions = actions;
    flow.on_complete_flow_id = on_complete_flow_id;
    flow.tm_update = Some(state.stamps.now());
    flows::update(&mut *tx, &flow).await?;
    let event = state
        .events
        .event(&flow.customer_id, "flow", &flow.id, "updated", &flow);
    state.events.commit(tx, event).await?;
    // Calls read the new version from now on.
    state.flows.forget(&flow.id);
    Ok(Json(flow))
}

/// Delete a flow (soft: `tm_delete` is set).
#[utoipa::path(delete, path = "/flows/{id}", tag = "flows", responses((status = 200, body = Flow), (status = 404)))]
pub async fn delete(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Flow>> {
    let id = resource_id(&id)?;
    let mut tx = state.store.begin().await?;
    let mut flow = super::owned_or_404::<Flow>(&mut *tx, &caller.customer_id, id).await?;
    let now = state.stamps.now();
    owned::delete::<Flow>(&mut *tx, &caller.customer_id, id, &now).await?;
    flow.tm_delete = Some(now.clone());
    flow.tm_update = Some(now);
    let event = state
        .events
        .event(&flow.customer_id, "flow", &flow.id, "deleted", &flow);
    state.events.commit(tx, event).await?;
    state.flows.forget(&flow.id);
    Ok(Json(flow))
}
