//! Flows: stored lists of actions (VoIPBIN's `FlowManagerFlow`).

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

/// A flow, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Flow {
    /// Its id.
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// `flow` for flows made through the API.
    #[serde(rename = "type")]
    pub kind: String,
    /// A name.
    pub name: String,
    /// Notes.
    pub detail: String,
    /// The actions, in canonical form.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// The flow to run when an activeflow of this one ends.
    pub on_complete_flow_id: Option<String>,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl super::owned::Owned for Flow {
    const TABLE: &'static str = "flows";
    const NAME: &'static str = "flow";
    const COLUMNS: &'static str = "id, customer_id, type, name, detail, actions, on_complete_flow_id, tm_create, tm_update, tm_delete";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        from_row(row)
    }
}

fn from_row(row: &AnyRow) -> Result<Flow, sqlx::Error> {
    let actions: String = row.try_get("actions")?;
    Ok(Flow {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        kind: row.try_get("type")?,
        name: row.try_get("name")?,
        detail: row.try_get("detail")?,
        actions: serde_json::from_str(&actions).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        on_complete_flow_id: row.try_get("on_complete_flow_id")?,
        tm_create: row.try_get("tm_create")?,
        tm_update: row.try_get("tm_update")?,
        tm_delete: row.try_get("tm_delete")?,
    })
}

/// Inserts a flow.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    f: &Flow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO flows (id, customer_id, type, name, detail, actions, on_complete_flow_id, tm_create) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&f.id)
    .bind(&f.customer_id)
    .bind(&f.kind)
    .bind(&f.name)
    .bind(&f.detail)
    .bind(f.actions.to_string())
    .bind(&f.on_complete_flow_id)
    .bind(&f.tm_create)
    .execute(ex)
    .await?;
    Ok(())
}

/// Writes a flow's name, detail, actions and on_complete_flow_id.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    f: &Flow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE flows SET name = $3, detail = $4, actions = $5, on_complete_flow_id = $6, tm_update = $7 \
         WHERE id = $1 AND customer_id = $2 AND tm_delete IS NULL",
    )
    .bind(&f.id)
    .bind(&f.customer_id)
    .bind(&f.name)
    .bind(&f.detail)
    .bind(f.actions.to_string())
    .bind(&f.on_complete_flow_id)
    .bind(&f.tm_update)
    .execute(ex)
    .await?;
    Ok(())
}
