//! Recordings: their metadata, and the WAV file itself at `/recordingfiles/{id}`, as
//! the original names it; deleting one removes both.

use axum::Json;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};

use super::{Page, St};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, resource_id};
use crate::store::owned;
use crate::store::page::PageQuery;
use crate::store::recordings::Recording;

/// List recordings, newest first.
#[utoipa::path(get, path = "/recordings", tag = "recordings",
    params(("page_size" = Option<i64>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Page<Recording>)))]
pub async fn list(
    state: St,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Recording>>> {
    let items = owned::list::<Recording>(
        state.store.pool(),
        &caller.customer_id,
        &page.token(),
        page.size(),
    )
    .await?;
    Ok(Json(Page::new(items, |r| &r.tm_create)))
}

/// Get a recording.
#[utoipa::path(get, path = "/recordings/{id}", tag = "recordings",
    responses((status = 200, body = Recording), (status = 404)))]
pub async fn get_one(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Recording>> {
    let id = resource_id(&id)?;
    super::owned_or_404::<Recording>(state.store.pool(), &caller.customer_id, id)
        .await
        .map(Json)
}

/// Delete a finished recording: its record and its file. One still being written
/// is refused (stop it first: `POST /calls/{id}/recording_stop`).
#[utoipa::path(delete, path = "/recordings/{id}", tag = "recordings",
    responses((status = 200, body = Recording), (status = 400), (status = 404)))]
pub async fn delete(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Recording>> {
    let id = resource_id(&id)?;
    let rec = super::delete_owned::<Recording>(
        &state,
        &caller.customer_id,
        id,
        |r| {
            if r.status == "recording" {
                return Err(ApiError::invalid(
                    "id",
                    "the recording is still being written: stop it first",
                ));
            }
            Ok(())
        },
        |r, now| {
            r.tm_delete = Some(now.clone());
            r.tm_update = Some(now);
        },
    )
    .await?;
    if let Err(e) = tokio::fs::remove_file(&rec.filepath).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(recording = %rec.id, error = %e, "the recording's file stays");
    }
    Ok(Json(rec))
}

/// Download a recording: the stereo WAV (caller left, what the caller heard right).
#[utoipa::path(get, path = "/recordingfiles/{id}", tag = "recordings",
    responses((status = 200, description = "audio/wav"), (status = 404)))]
pub async fn file(state: St, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let id = resource_id(&id)?;
    let rec = super::owned_or_404::<Recording>(state.store.pool(), &caller.customer_id, id).await?;
    let bytes = tokio::fs::read(&rec.filepath)
        .await
        .map_err(|_| ApiError::NotFound("recording file"))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "audio/wav".to_owned()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.wav\"", rec.id),
            ),
        ],
        bytes,
    )
        .into_response())
}
