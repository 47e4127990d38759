//! Platform settings kept in the database, such as the JWT signing secret, so they
//! survive restarts and are shared by every node.

use sqlx::{Any, Executor, Row};

/// Reads a setting.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(ex)
        .await?;
    row.map(|r| r.try_get("value")).transpose()
}

/// Writes a setting unless it exists; returns the value that is stored afterwards.
pub async fn get_or_insert(
    store: &super::Store,
    key: &str,
    value: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(store.pool())
        .await?;
    get(store.pool(), key)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}
