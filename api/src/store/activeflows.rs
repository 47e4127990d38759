//! Activeflows (VoIPBIN's `FlowManagerActiveflow`): a flow running for a call, with
//! its current action and the actions it executed.

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

use super::json;
use super::owned::Owned;

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
    pub current_action: Value,
    /// Not used.
    pub forward_action_id: String,
    /// The latest actions executed, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub executed_actions: Value,
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
            current_action: json::column(row, "current_action")?,
            forward_action_id: String::new(),
            executed_actions: json::column(row, "executed_actions")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
        })
    }
}

/// Inserts an activeflow.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    a: &Activeflow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO activeflows (id, customer_id, flow_id, status, reference_type, reference_id, \
         reference_activeflow_id, on_complete_flow_id, current_action, executed_actions, tm_create) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&a.id)
    .bind(&a.customer_id)
    .bind(&a.flow_id)
    .bind(&a.status)
    .bind(&a.reference_type)
    .bind(&a.reference_id)
    .bind(&a.reference_activeflow_id)
    .bind(&a.on_complete_flow_id)
    .bind(a.current_action.to_string())
    .bind(a.executed_actions.to_string())
    .bind(&a.tm_create)
    .execute(ex)
    .await?;
    Ok(())
}

/// Writes an activeflow's status and actions.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    a: &Activeflow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE activeflows SET status = $2, current_action = $3, executed_actions = $4, tm_update = $5 WHERE id = $1",
    )
    .bind(&a.id)
    .bind(&a.status)
    .bind(a.current_action.to_string())
    .bind(a.executed_actions.to_string())
    .bind(&a.tm_update)
    .execute(ex)
    .await?;
    Ok(())
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
