//! Calls: read the caller's calls and delete them; hang a live one up, speak or
//! record in it, mute it, hold it, give it music on hold.

use axum::Json;
use axum::extract::Path;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{Page, St};
use crate::CallMedia;
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

/// Delete a call: a live one is hung up first (`call_hungup` follows); the record
/// is gone from the API at once (`call_deleted`).
#[utoipa::path(delete, path = "/calls/{id}", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn delete(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let id = resource_id(&id)?;
    let call = super::delete_owned::<Call>(
        &state,
        &caller.customer_id,
        id,
        |_| Ok(()),
        |c, now| {
            c.tm_delete = Some(now.clone());
            c.tm_update = Some(now);
        },
    )
    .await?;
    // Not live here (a row a crash left) needs no hangup: the next start closes it.
    if call.status != "hangup" && !state.calls.get().is_some_and(|c| c.hangup(id)) {
        tracing::debug!(call_id = id, "hangup: the call is not live on this node");
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
    let call = live_call(state, caller, id).await?;
    if let Err(findings) = flow_runtime::parse_flow(&actions) {
        let first = findings
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_default();
        return Err(ApiError::invalid("body", first));
    }
    if !state
        .calls
        .get()
        .is_some_and(|c| c.interrupt(&call.id, actions))
    {
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

/// The body of `POST /calls/{id}/recording_start` (all optional): the options of
/// the `recording_start` action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingStartBody {
    /// wav (the format recordings are kept in).
    #[serde(default)]
    pub format: Option<String>,
    /// Stop after this many seconds without speech (0: never).
    #[serde(default)]
    pub end_of_silence: Option<u64>,
    /// none, any, * or #: a key that stops it.
    #[serde(default)]
    pub end_of_key: Option<String>,
    /// The longest it may run, in seconds (0: no limit).
    #[serde(default)]
    pub duration: Option<u64>,
    /// Beep before recording.
    #[serde(default)]
    pub beep_start: Option<bool>,
}

/// Start recording a live call, with the `recording_start` action's options.
#[utoipa::path(post, path = "/calls/{id}/recording_start", tag = "calls",
    request_body = RecordingStartBody,
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn recording_start(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Call>> {
    let body: RecordingStartBody = optional_json(&body)?;
    let mut option = json!({"format": body.format.unwrap_or_else(|| "wav".to_owned())});
    if let Some(s) = body.end_of_silence {
        option["end_of_silence"] = json!(s);
    }
    if let Some(k) = body.end_of_key {
        if !matches!(k.as_str(), "" | "none" | "any" | "*" | "#") {
            return Err(ApiError::invalid(
                "end_of_key",
                format!("{k:?}: must be none, any, * or #"),
            ));
        }
        option["end_of_key"] = json!(k);
    }
    if let Some(d) = body.duration {
        option["duration"] = json!(d);
    }
    if let Some(b) = body.beep_start {
        option["beep_start"] = json!(b);
    }
    interrupt(
        &state,
        &caller,
        &id,
        json!([{"type": "recording_start", "option": option}]),
    )
    .await
}

/// A JSON body that may be left out (empty or whitespace: the defaults).
fn optional_json<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        crate::extract::parse_json(body)
    }
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

/// The body of `POST` and `DELETE /calls/{id}/mute`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MuteBody {
    /// in (what the caller says), out (what it hears) or both; both when left out.
    #[serde(default)]
    pub direction: Option<String>,
}

/// The call's mute direction after muting (`on`) or unmuting `direction`.
fn muted(current: &str, direction: &str, on: bool) -> &'static str {
    let has = |d: &str| current == d || current == "both";
    let (mut inbound, mut outbound) = (has("in"), has("out"));
    if matches!(direction, "in" | "both") {
        inbound = on;
    }
    if matches!(direction, "out" | "both") {
        outbound = on;
    }
    match (inbound, outbound) {
        (true, true) => "both",
        (true, false) => "in",
        (false, true) => "out",
        (false, false) => "",
    }
}

/// A live (answered) call of the caller's, or the error that says why not.
async fn live_call(state: &St, caller: &Caller, id: &str) -> ApiResult<Call> {
    let id = resource_id(id)?;
    let call = super::owned_or_404::<Call>(state.store.pool(), &caller.customer_id, id).await?;
    if call.status != "progressing" {
        return Err(ApiError::invalid(
            "id",
            format!("the call is {}, not answered and live", call.status),
        ));
    }
    Ok(call)
}

/// Sends `what` to the live call; the call as it will be.
fn send_media(state: &St, call: Call, what: CallMedia) -> ApiResult<Json<Call>> {
    if !state.calls.get().is_some_and(|c| c.media(&call.id, what)) {
        return Err(ApiError::invalid(
            "id",
            "the call is not live on this server",
        ));
    }
    Ok(Json(call))
}

/// Mutes or unmutes a live call in the body's direction.
async fn set_mute(
    state: St,
    caller: Caller,
    id: String,
    body: axum::body::Bytes,
    on: bool,
) -> ApiResult<Json<Call>> {
    let body: MuteBody = optional_json(&body)?;
    let direction = body.direction.unwrap_or_else(|| "both".to_owned());
    if !matches!(direction.as_str(), "in" | "out" | "both") {
        return Err(ApiError::invalid(
            "direction",
            format!("{direction:?}: must be in, out or both"),
        ));
    }
    let mut call = live_call(&state, &caller, &id).await?;
    call.mute_direction = muted(&call.mute_direction, &direction, on).to_owned();
    let what = CallMedia::Mute {
        inbound: direction != "out",
        outbound: direction != "in",
        on,
    };
    send_media(&state, call, what)
}

/// Mute a live call: `in`, the caller is not heard; `out`, it hears silence; `both`
/// (the default).
#[utoipa::path(post, path = "/calls/{id}/mute", tag = "calls", request_body = MuteBody,
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn mute(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Call>> {
    set_mute(state, caller, id, body, true).await
}

/// Unmute a live call in the body's direction (both by default).
#[utoipa::path(delete, path = "/calls/{id}/mute", tag = "calls", request_body = MuteBody,
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn unmute(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Call>> {
    set_mute(state, caller, id, body, false).await
}

/// Put a live call on hold: a re-INVITE offering `a=sendonly` (RFC 3264 section
/// 8.4, RFC 6337); the caller hears music on hold if it is on, else silence.
#[utoipa::path(post, path = "/calls/{id}/hold", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn hold(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let call = live_call(&state, &caller, &id).await?;
    send_media(&state, call, CallMedia::Hold(true))
}

/// Take a live call off hold (a re-INVITE offering `a=sendrecv`).
#[utoipa::path(delete, path = "/calls/{id}/hold", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn unhold(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let call = live_call(&state, &caller, &id).await?;
    send_media(&state, call, CallMedia::Hold(false))
}

/// Turn music on hold on: the caller hears it whenever its flow plays nothing.
#[utoipa::path(post, path = "/calls/{id}/moh", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn moh_on(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let call = live_call(&state, &caller, &id).await?;
    send_media(&state, call, CallMedia::Moh(true))
}

/// Turn music on hold off.
#[utoipa::path(delete, path = "/calls/{id}/moh", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn moh_off(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Call>> {
    let call = live_call(&state, &caller, &id).await?;
    send_media(&state, call, CallMedia::Moh(false))
}

/// Silence on: whenever the flow plays nothing (and music on hold is off), the call
/// is sent silent audio instead of no packets.
#[utoipa::path(post, path = "/calls/{id}/silence", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn silence_on(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Call>> {
    let call = live_call(&state, &caller, &id).await?;
    send_media(&state, call, CallMedia::Silence(true))
}

/// Silence off: nothing is sent while the flow plays nothing.
#[utoipa::path(delete, path = "/calls/{id}/silence", tag = "calls",
    responses((status = 200, body = Call), (status = 400), (status = 404)))]
pub async fn silence_off(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Call>> {
    let call = live_call(&state, &caller, &id).await?;
    send_media(&state, call, CallMedia::Silence(false))
}

#[cfg(test)]
mod tests {
    use super::muted;

    #[test]
    fn mute_directions_combine() {
        assert_eq!(muted("", "in", true), "in");
        assert_eq!(muted("in", "out", true), "both");
        assert_eq!(muted("both", "in", false), "out");
        assert_eq!(muted("out", "both", false), "");
        assert_eq!(muted("", "both", true), "both");
    }
}
