//! Recordings (VoIPBIN's `CallManagerRecording`): stereo WAV files of calls, the
//! caller on the left and what the caller heard on the right.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::owned::Owned;
use super::param::Param;

/// A recording, as the API shows it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
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

/// Inserts a recording that started ([`insert_params`]).
pub const INSERT: &str = "INSERT INTO recordings (id, customer_id, reference_type, reference_id, activeflow_id, \
    status, format, filepath, tm_start, tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A recording's values for [`INSERT`].
pub fn insert_params(r: &Recording) -> [Param<'_>; 10] {
    [
        Param::Text(&r.id),
        Param::Text(&r.customer_id),
        Param::Text(&r.reference_type),
        Param::Text(&r.reference_id),
        Param::Text(&r.activeflow_id),
        Param::Text(&r.status),
        Param::Text(&r.format),
        Param::Text(&r.filepath),
        Param::opt(r.tm_start.as_deref()),
        Param::Text(&r.tm_create),
    ]
}

/// Marks a recording ended ([`finish_params`]).
pub const FINISH: &str =
    "UPDATE recordings SET status = $1, tm_end = $2, tm_update = $2 WHERE id = $3";

/// A recording's values for [`FINISH`].
pub fn finish_params(r: &Recording) -> [Param<'_>; 3] {
    [
        Param::Text(&r.status),
        Param::opt(r.tm_end.as_deref()),
        Param::Text(&r.id),
    ]
}
