//! Numbers: E.164 numbers mapped to the flows that handle their calls and messages
//! (VoIPBIN's `NumberManagerNumber`). A number is unique across the platform.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Executor, Row};

use super::owned::Owned;
use utoipa::ToSchema;

/// A number, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Number {
    /// Its id.
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// The E.164 number, for example `+14155551234`.
    pub number: String,
    /// `normal` or `virtual`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The flow for incoming calls.
    pub call_flow_id: Option<String>,
    /// The flow for incoming messages.
    pub message_flow_id: Option<String>,
    /// A name.
    pub name: String,
    /// Notes.
    pub detail: String,
    /// `active` or `deleted`.
    pub status: String,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl Owned for Number {
    const TABLE: &'static str = "numbers";
    const NAME: &'static str = "number";
    const COLUMNS: &'static str = "id, customer_id, number, type, call_flow_id, message_flow_id, name, detail, status, \
    tm_create, tm_update, tm_delete";
    const DELETE_ALSO: &'static str = "status = 'deleted', ";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        from_row(row)
    }
}

fn from_row(row: &AnyRow) -> Result<Number, sqlx::Error> {
    Ok(Number {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        number: row.try_get("number")?,
        kind: row.try_get("type")?,
        call_flow_id: row.try_get("call_flow_id")?,
        message_flow_id: row.try_get("message_flow_id")?,
        name: row.try_get("name")?,
        detail: row.try_get("detail")?,
        status: row.try_get("status")?,
        tm_create: row.try_get("tm_create")?,
        tm_update: row.try_get("tm_update")?,
        tm_delete: row.try_get("tm_delete")?,
    })
}

/// Inserts a number. A live duplicate fails on the unique index.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    n: &Number,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO numbers (id, customer_id, number, type, call_flow_id, message_flow_id, name, detail, \
         status, tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&n.id)
    .bind(&n.customer_id)
    .bind(&n.number)
    .bind(&n.kind)
    .bind(&n.call_flow_id)
    .bind(&n.message_flow_id)
    .bind(&n.name)
    .bind(&n.detail)
    .bind(&n.status)
    .bind(&n.tm_create)
    .execute(ex)
    .await?;
    Ok(())
}

/// The live number with this E.164 string, whoever owns it (for call routing).
pub async fn find_by_number<'e>(
    ex: impl Executor<'e, Database = Any>,
    number: &str,
) -> Result<Option<Number>, sqlx::Error> {
    let sql = AssertSqlSafe(format!(
        "SELECT {} FROM numbers WHERE number = $1 AND tm_delete IS NULL",
        <Number as Owned>::COLUMNS
    ));
    sqlx::query(sql)
        .bind(number)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A live number as call routing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRoute {
    /// The E.164 number.
    pub number: String,
    /// Its owner.
    pub customer_id: String,
    /// The flow for its calls, if it has one.
    pub call_flow_id: Option<String>,
}

/// Every live number, for the engine's routing table.
pub async fn all_routes<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<Vec<NumberRoute>, sqlx::Error> {
    sqlx::query("SELECT number, customer_id, call_flow_id FROM numbers WHERE tm_delete IS NULL")
        .fetch_all(ex)
        .await?
        .iter()
        .map(|row| {
            Ok(NumberRoute {
                number: row.try_get("number")?,
                customer_id: row.try_get("customer_id")?,
                call_flow_id: row.try_get("call_flow_id")?,
            })
        })
        .collect()
}

/// Writes a number's flows, name and detail.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    n: &Number,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE numbers SET call_flow_id = $3, message_flow_id = $4, name = $5, detail = $6, tm_update = $7 \
         WHERE id = $1 AND customer_id = $2 AND tm_delete IS NULL",
    )
    .bind(&n.id)
    .bind(&n.customer_id)
    .bind(&n.call_flow_id)
    .bind(&n.message_flow_id)
    .bind(&n.name)
    .bind(&n.detail)
    .bind(&n.tm_update)
    .execute(ex)
    .await?;
    Ok(())
}
