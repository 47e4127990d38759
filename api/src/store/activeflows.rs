//! Activeflows (VoIPBIN's `FlowManagerActiveflow`): a flow running for a call, with
//! its current action and the actions it executed.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

use super::json::JsonText;
use super::owned::Owned;
use super::param::Param;

/// An activeflow, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activeflow {
    /// Its id.
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// The flow it runs.
    pub flow_id: String,
    /// running or ended.
    pub status: String,
    /// `call`.
    pub reference_type: String,
    /// The call.
    pub reference_id: String,
    /// The activeflow it was chained from.
    pub reference_activeflow_id: String,
    /// The flow to chain to when it ends.
    pub on_complete_flow_id: String,
    /// Not used: events go to the customer's webhook.
    pub webhook_uri: String,
    /// Not used.
    pub webhook_method: String,
    /// The action running now.
    #[schema(value_type = Object)]
    pub current_action: JsonText,
    /// Not used.
    pub forward_action_id: String,
    /// The latest actions executed, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub executed_actions: JsonText,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl Owned for Activeflow {
    const TABLE: &'static str = "activeflows";
    const NAME: &'static str = "activeflow";
    const COLUMNS: &'static str = "id, customer_id, flow_id, status, reference_type, reference_id, \
    reference_activeflow_id, on_complete_flow_id, current_action, executed_actions, tm_create, tm_update, tm_delete";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Activeflow {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            flow_id: row.try_get("flow_id")?,
            status: row.try_get("status")?,
            reference_type: row.try_get("reference_type")?,
            reference_id: row.try_get("reference_id")?,
            reference_activeflow_id: row.try_get("reference_activeflow_id")?,
            on_complete_flow_id: row.try_get("on_complete_flow_id")?,
            webhook_uri: String::new(),
            webhook_method: String::new(),
            current_action: JsonText::column(row, "current_action")?,
            forward_action_id: String::new(),
            executed_actions: JsonText::column(row, "executed_actions")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
        })
    }
}

/// The columns an activeflow's snapshot writes (all but `tm_delete`), in bind
/// order.
const WRITTEN: [&str; 12] = [
    "id",
    "customer_id",
    "flow_id",
    "status",
    "reference_type",
    "reference_id",
    "reference_activeflow_id",
    "on_complete_flow_id",
    "current_action",
    "executed_actions",
    "tm_create",
    "tm_update",
];

/// The columns a known activeflow's later snapshots change.
const CHANGING: [&str; 4] = ["status", "current_action", "executed_actions", "tm_update"];

/// The upsert statements, one per size of [`super::upsert::SIZES`]: a new
/// activeflow is inserted, a known one gets its status and actions.
pub static UPSERTS: std::sync::LazyLock<super::upsert::Upserts> =
    std::sync::LazyLock::new(|| super::upsert::statements("activeflows", &WRITTEN, &CHANGING));

/// An activeflow snapshot's values for [`UPSERTS`], in the order of its written columns.
pub fn upsert_params(a: &Activeflow) -> [Param<'_>; WRITTEN.len()] {
    [
        Param::Text(&a.id),
        Param::Text(&a.customer_id),
        Param::Text(&a.flow_id),
        Param::Text(&a.status),
        Param::Text(&a.reference_type),
        Param::Text(&a.reference_id),
        Param::Text(&a.reference_activeflow_id),
        Param::Text(&a.on_complete_flow_id),
        Param::Text(a.current_action.as_str()),
        Param::Text(a.executed_actions.as_str()),
        Param::Text(&a.tm_create),
        Param::opt(a.tm_update.as_deref()),
    ]
}

/// Ends every activeflow left running by a stop (a crash or restart).
pub async fn close_orphans<'e>(
    ex: impl Executor<'e, Database = Any>,
    now: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE activeflows SET status = 'ended', tm_update = $1 WHERE status <> 'ended'",
    )
    .bind(now)
    .execute(ex)
    .await?
    .rows_affected())
}
