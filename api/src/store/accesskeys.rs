//! Access keys: long-lived API credentials. Only a SHA-256 hash of each key is
//! stored; the key itself is shown once, when it is created.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

/// An access key, as the API shows it (VoIPBIN's `CustomerManagerAccesskey`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Accesskey {
    /// Its id.
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// A name.
    pub name: String,
    /// Notes.
    pub detail: String,
    /// The key itself: only in the response to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The key's first characters, to tell keys apart.
    pub token_prefix: String,
    /// When the key stops working; null for never.
    pub tm_expire: Option<String>,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl super::owned::Owned for Accesskey {
    const TABLE: &'static str = "accesskeys";
    const NAME: &'static str = "accesskey";
    const COLUMNS: &'static str =
        "id, customer_id, name, detail, token_prefix, tm_expire, tm_create, tm_update, tm_delete";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        from_row(row)
    }
}

fn from_row(row: &AnyRow) -> Result<Accesskey, sqlx::Error> {
    Ok(Accesskey {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        name: row.try_get("name")?,
        detail: row.try_get("detail")?,
        token: None,
        token_prefix: row.try_get("token_prefix")?,
        tm_expire: row.try_get("tm_expire")?,
        tm_create: row.try_get("tm_create")?,
        tm_update: row.try_get("tm_update")?,
        tm_delete: row.try_get("tm_delete")?,
    })
}

/// Inserts a key with the hash of its token.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &Accesskey,
    token_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accesskeys (id, customer_id, name, detail, token_hash, token_prefix, \
         tm_expire, tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&key.id)
    .bind(&key.customer_id)
    .bind(&key.name)
    .bind(&key.detail)
    .bind(token_hash)
    .bind(&key.token_prefix)
    .bind(&key.tm_expire)
    .bind(&key.tm_create)
    .execute(ex)
    .await?;
    Ok(())
}

/// The owner of a live, unexpired key with this token hash.
pub async fn customer_for_token<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
    now: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT customer_id FROM accesskeys WHERE token_hash = $1 AND tm_delete IS NULL \
         AND (tm_expire IS NULL OR tm_expire > $2)",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("customer_id")).transpose()
}

/// Writes a key's name and detail.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &Accesskey,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accesskeys SET name = $3, detail = $4, tm_update = $5 \
         WHERE id = $1 AND customer_id = $2 AND tm_delete IS NULL",
    )
    .bind(&key.id)
    .bind(&key.customer_id)
    .bind(&key.name)
    .bind(&key.detail)
    .bind(&key.tm_update)
    .execute(ex)
    .await?;
    Ok(())
}
