//! Calls: read the caller's calls, and hang a live one up.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Page, St};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, resource_id};
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

/// The body of `POST /calls/{id}/talk`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TalkBody {
    /// Plain text or SSML.
    pub text: String,
    /// BCP 47, for example en-US.
    #[serde(default)]
    pub language: String,
    /// The TTS provider ("" for the default).
    #[serde(default)]
    pub provider: String,
    /// The provider's voice.
    #[serde(default)]
    pub voice_id: String,
}

/// Runs `actions` in the caller's live call `id` ahead of its flow.
async fn interrupt(state: &St, caller: &Caller, id: &str, actions: Value) -> ApiResult<Json<Call>> {
    let id = resource_id(id)?;
    let call = super::owned_or_404::<Call>(state.store.pool(), &caller.customer_id, id).await?;
    if call.status != "progressing" {
        return Err(ApiError::invalid(
            "id",
            format!("the call is {}, not answered and live", call.status),
        ));
    }
    if let Err(findings) = flow_runtime::parse_flow(&actions) {
        let first = findings
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        return Err(ApiError::invalid("body", first));
    }
    if !state.calls.get().is_some_and(|c| c.interrupt(id, actions)) {
        return Err(ApiError::invalid(
            "id",
            "the call is not live on this server",
        ));
    }
    Ok(Json(call))
}

/// Speak text to a live call now (its flow resumes after).
#[utoipa::path(post, path = "/calls/{id}/talk", tag = "calls", request_body = TalkBody,
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn talk(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TalkBody>,
) -> ApiResult<Json<Call>> {
    if body.text.trim().is_empty() {
        return Err(ApiError::invalid("text", "must not be empty"));
    }
    let action = json!([{"type": "talk", "option": {
        "text": body.text, "language": body.language, "provider": body.provider, "voice_id": body.voice_id,
    }}]);
    interrupt(&state, &caller, &id, action).await
}

/// Start recording a live call.
#[utoipa::path(post, path = "/calls/{id}/recording_start", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn recording_start(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Call>> {
    interrupt(
        &state,
        &caller,
        &id,
        json!([{"type": "recording_start", "option": {"format": "wav"}}]),
    )
    .await
}

/// Stop recording a live call.
#[utoipa::path(post, path = "/calls/{id}/recording_stop", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn recording_stop(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Call>> {
    interrupt(&state, &caller, &id, json!([{"type": "recording_stop"}])).await
}
