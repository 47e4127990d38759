//! Groupcalls: destinations rung together (`ring_all`) or one after another
//! (`linear`), each a call of its own running the flow once answered; the first
//! answer hangs the others up (`hangup_others`). Events: `groupcall_created`,
//! `groupcall_progressing` (a call answered), `groupcall_hangup` (every call
//! ended), `groupcall_deleted`.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::call_create::{
    checked_anonymous, checked_destinations, checked_flow_source, checked_source, engine, refused,
};
use super::{Page, St};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, resource_id};
use crate::originate::{AnswerMethod, GroupcallRequest, OriginateRequest, RingMethod};
use crate::store::calls::Address;
use crate::store::groupcalls::Groupcall;
use crate::store::owned;
use crate::store::page::PageQuery;

/// The body of `POST /groupcalls` (VoIPBIN's shape).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateGroupcall {
    /// The caller ID: a `tel` number of the customer's or a SIP address.
    pub source: Option<Address>,
    /// Who to ring.
    pub destinations: Option<Vec<Address>>,
    /// The flow the answered call runs; `actions` is ignored when it is set.
    pub flow_id: Option<String>,
    /// Inline actions, when `flow_id` is not set.
    #[schema(value_type = Option<Vec<Object>>)]
    pub actions: Option<Value>,
    /// `ring_all` (the default: every destination at once) or `linear` (one after
    /// another, the next when one does not answer).
    pub ring_method: Option<String>,
    /// `hangup_others` (the default: the first answer hangs the others up) or
    /// empty (the others ring on).
    pub answer_method: Option<String>,
    /// `yes` hides the caller ID.
    pub anonymous: Option<String>,
}

/// Start a groupcall: its first calls are placed (every destination with
/// `ring_all`, the first with `linear`) before the answer.
#[utoipa::path(post, path = "/groupcalls", tag = "groupcalls", request_body = CreateGroupcall,
    responses((status = 200, body = Groupcall), (status = 400),
        (status = 429, description = "the customer's limit of concurrent outbound calls is reached")))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<CreateGroupcall>,
) -> ApiResult<Json<Groupcall>> {
    let flow = checked_flow_source(&state, &caller, body.flow_id, body.actions.as_ref()).await?;
    let source = checked_source(&state, &caller, body.source).await?;
    let destinations = checked_destinations(body.destinations)?;
    let ring_method = match body.ring_method.as_deref().unwrap_or("") {
        "" | "ring_all" | "ringall" => RingMethod::RingAll,
        "linear" => RingMethod::Linear,
        other => {
            return Err(ApiError::invalid(
                "ring_method",
                format!("{other:?} is not ring_all or linear"),
            ));
        }
    };
    let answer_method = match body.answer_method.as_deref() {
        None | Some("hangup_others") => AnswerMethod::HangupOthers,
        Some("") => AnswerMethod::None,
        Some(other) => {
            return Err(ApiError::invalid(
                "answer_method",
                format!("{other:?} is not hangup_others or empty"),
            ));
        }
    };
    let anonymous = checked_anonymous(body.anonymous.as_deref())?;
    let request = GroupcallRequest {
        calls: OriginateRequest {
            customer_id: caller.customer_id.clone(),
            flow,
            source,
            destinations,
            anonymous,
            variables: Vec::new(),
            early_execution: false,
            master_call_id: String::new(),
            groupcall_id: String::new(),
        },
        ring_method,
        answer_method,
    };
    let groupcall = engine(&state)?.groupcall(request).await.map_err(refused)?;
    Ok(Json(groupcall))
}

/// List groupcalls, newest first.
#[utoipa::path(get, path = "/groupcalls", tag = "groupcalls",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Groupcall>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Groupcall>>> {
    let items = owned::list::<Groupcall>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |g| &g.tm_create)))
}

/// Get a groupcall.
#[utoipa::path(get, path = "/groupcalls/{id}", tag = "groupcalls",
    responses((status = 200, body = Groupcall), (status = 404)))]
pub async fn get_one(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Groupcall>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Groupcall>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Hang up a groupcall: every call of it; `groupcall_hangup` follows once they
/// have ended.
#[utoipa::path(post, path = "/groupcalls/{id}/hangup", tag = "groupcalls",
    responses((status = 200, body = Groupcall), (status = 400), (status = 404)))]
pub async fn hangup(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Groupcall>> {
    let id = resource_id(&id)?;
    let groupcall =
        super::owned_or_404::<Groupcall>(state.store.pool(), &caller.customer_id, id).await?;
    if groupcall.status == "hangup" {
        return Err(ApiError::invalid("id", "the groupcall has already hung up"));
    }
    if !engine(&state)?.hangup_groupcall(id) {
        return Err(ApiError::invalid(
            "id",
            "the groupcall is not live on this server",
        ));
    }
    Ok(Json(groupcall))
}

/// Delete a groupcall: a live one is hung up first (`groupcall_hangup` follows);
/// the record is gone from the API at once (`groupcall_deleted`).
#[utoipa::path(delete, path = "/groupcalls/{id}", tag = "groupcalls",
    responses((status = 200, body = Groupcall), (status = 400), (status = 404)))]
pub async fn delete(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Groupcall>> {
    let id = resource_id(&id)?;
    let groupcall = super::delete_owned::<Groupcall>(
        &state,
        &caller.customer_id,
        id,
        |_| Ok(()),
        |g, now| {
            g.tm_delete = Some(now.clone());
            g.tm_update = Some(now);
        },
    )
    .await?;
    // Not live here (a row a crash left) needs no hangup: the next start closes it.
    if groupcall.status != "hangup"
        && !state
            .originate
            .get()
            .is_some_and(|e| e.hangup_groupcall(id))
    {
        tracing::debug!(groupcall = %id, "deleted while not live here");
    }
    Ok(Json(groupcall))
}
