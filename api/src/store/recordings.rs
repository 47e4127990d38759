//! Recordings (VoIPBIN's `CallManagerRecording`): stereo WAV files of calls, the
//! caller on the left and what the caller heard on the right.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

use super::owned::Owned;

/// A recording, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recording {
    /// Its id (also the file's id for `/recordingfiles/{id}`).
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// Never set for a call's recording.
    pub owner_type: String,
    /// Never set for a call's recording.
    pub owner_id: String,
    /// `call`.
    pub reference_type: String,
    /// The call.
    pub reference_id: String,
    /// recording or ended.
    pub status: String,
    /// `wav`.
    pub format: String,
    /// The activeflow that started it.
    pub activeflow_id: String,
    /// Not used for calls' recordings yet.
    pub on_end_flow_id: String,
    /// Started at.
    pub tm_start: Option<String>,
    /// Ended at.
    pub tm_end: Option<String>,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
    /// Where the file is (never shown).
    #[serde(skip)]
    pub filepath: String,
}

impl Owned for Recording {
    const TABLE: &'static str = "recordings";
    const NAME: &'static str = "recording";
    const COLUMNS: &'static str = "id, customer_id, reference_type, reference_id, activeflow_id, status, format, \
    filepath, tm_start, tm_end, tm_create, tm_update, tm_delete";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Recording {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            owner_type: String::new(),
            owner_id: String::new(),
            reference_type: row.try_get("reference_type")?,
            reference_id: row.try_get("reference_id")?,
            status: row.try_get("status")?,
            format: row.try_get("format")?,
            activeflow_id: row.try_get("activeflow_id")?,
            on_end_flow_id: String::new(),
            tm_start: row.try_get("tm_start")?,
            tm_end: row.try_get("tm_end")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
            filepath: row.try_get("filepath")?,
        })
    }
}

/// Inserts a recording.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &Recording,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recordings (id, customer_id, reference_type, reference_id, activeflow_id, status, format, \
         filepath, tm_start, tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.customer_id)
    .bind(&r.reference_type)
    .bind(&r.reference_id)
    .bind(&r.activeflow_id)
    .bind(&r.status)
    .bind(&r.format)
    .bind(&r.filepath)
    .bind(&r.tm_start)
    .bind(&r.tm_create)
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks a recording ended.
pub async fn finish<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &Recording,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recordings SET status = $2, tm_end = $3, tm_update = $3 WHERE id = $1")
        .bind(&r.id)
        .bind(&r.status)
        .bind(&r.tm_end)
        .execute(ex)
        .await?;
    Ok(())
}
