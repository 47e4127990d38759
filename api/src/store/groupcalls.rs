//! Groupcalls (VoIPBIN's `CallManagerGroupcall`): destinations rung together
//! (`ring_all`) or one after another (`linear`), each a call of its own; written
//! by the engine's groupcall task as it follows its calls.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

use super::calls::Address;
use super::json;
use super::owned::Owned;
use super::param::Param;

/// A groupcall, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Groupcall {
    /// Its id.
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// Who it rings for (`agent`), or empty.
    pub owner_type: String,
    /// That owner's id, or empty.
    pub owner_id: String,
    /// `progressing` (ringing or up), `hangingup` (hung up, calls ending) or
    /// `hangup`.
    pub status: String,
    /// The flow its calls run once answered.
    pub flow_id: String,
    /// The caller ID.
    pub source: Address,
    /// Who it rings.
    pub destinations: Vec<Address>,
    /// The call that made it (a flow's), or empty.
    pub master_call_id: String,
    /// `ring_all` (every destination at once) or `linear` (one after another).
    pub ring_method: String,
    /// `hangup_others` (the first answer hangs the others up) or empty.
    pub answer_method: String,
    /// The call that answered, once one has.
    pub answer_call_id: String,
    /// Its calls, in the order they were placed.
    pub call_ids: Vec<String>,
    /// Its calls not yet over.
    pub call_count: i64,
    /// `linear`: the destination being rung.
    pub dial_index: i64,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl Owned for Groupcall {
    const TABLE: &'static str = "groupcalls";
    const NAME: &'static str = "groupcall";
    const COLUMNS: &'static str = "id, customer_id, owner_type, owner_id, status, flow_id, source, destinations, \
    master_call_id, ring_method, answer_method, answer_call_id, call_ids, call_count, dial_index, tm_create, \
    tm_update, tm_delete";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Groupcall {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            owner_type: row.try_get("owner_type")?,
            owner_id: row.try_get("owner_id")?,
            status: row.try_get("status")?,
            flow_id: row.try_get("flow_id")?,
            source: json::column(row, "source")?,
            destinations: json::column(row, "destinations")?,
            master_call_id: row.try_get("master_call_id")?,
            ring_method: row.try_get("ring_method")?,
            answer_method: row.try_get("answer_method")?,
            answer_call_id: row.try_get("answer_call_id")?,
            call_ids: json::column(row, "call_ids")?,
            call_count: row.try_get("call_count")?,
            dial_index: row.try_get("dial_index")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
        })
    }
}

/// Inserts a groupcall ([`insert_params`]).
pub const INSERT: &str = "INSERT INTO groupcalls (id, customer_id, owner_type, owner_id, status, flow_id, \
    source, destinations, master_call_id, ring_method, answer_method, answer_call_id, call_ids, call_count, \
    dial_index, tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

/// A groupcall's values for [`INSERT`].
pub fn insert_params(g: &Groupcall) -> [Param<'_>; 16] {
    [
        Param::Text(&g.id),
        Param::Text(&g.customer_id),
        Param::Text(&g.owner_type),
        Param::Text(&g.owner_id),
        Param::Text(&g.status),
        Param::Text(&g.flow_id),
        Param::json(&g.source),
        Param::json(&g.destinations),
        Param::Text(&g.master_call_id),
        Param::Text(&g.ring_method),
        Param::Text(&g.answer_method),
        Param::Text(&g.answer_call_id),
        Param::json(&g.call_ids),
        Param::Int(g.call_count),
        Param::Int(g.dial_index),
        Param::Text(&g.tm_create),
    ]
}

/// Writes what changes as the groupcall follows its calls ([`update_params`]).
pub const UPDATE: &str = "UPDATE groupcalls SET status = $1, answer_call_id = $2, call_ids = $3, \
    call_count = $4, dial_index = $5, tm_update = $6 WHERE id = $7";

/// A groupcall's values for [`UPDATE`].
pub fn update_params(g: &Groupcall) -> [Param<'_>; 7] {
    [
        Param::Text(&g.status),
        Param::Text(&g.answer_call_id),
        Param::json(&g.call_ids),
        Param::Int(g.call_count),
        Param::Int(g.dial_index),
        Param::opt(g.tm_update.as_deref()),
        Param::Text(&g.id),
    ]
}

/// Marks the groupcalls a stop left live as hung up (at start).
pub async fn close_orphans<'e>(
    ex: impl Executor<'e, Database = Any>,
    now: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE groupcalls SET status = 'hangup', call_count = 0, tm_update = $1 WHERE status <> 'hangup'",
    )
    .bind(now)
    .execute(ex)
    .await?
    .rows_affected())
}
