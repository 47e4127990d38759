//! The queries every customer-owned table shares: get one, list a page, soft-delete.
//! Each table says its name, columns and how a row reads; the SQL is built from those
//! constants only, never from input.

use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Executor};

/// A table whose rows belong to one customer and are deleted softly.
pub trait Owned: Sized {
    /// The table's name.
    const TABLE: &'static str;
    /// The resource's name in errors ("flow" not found).
    const NAME: &'static str;
    /// The columns to select, comma-separated.
    const COLUMNS: &'static str;
    /// What a soft delete sets besides `tm_delete` and `tm_update` (`$3` is now),
    /// for example `status = 'deleted', `; empty when nothing else.
    const DELETE_ALSO: &'static str = "";
    /// Reads one row.
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error>;
}

/// One live row of a customer.
pub async fn get<'e, R: Owned>(
    ex: impl Executor<'e, Database = Any>,
    customer_id: &str,
    id: &str,
) -> Result<Option<R>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM {} WHERE id = $1 AND customer_id = $2 AND tm_delete IS NULL",
        R::COLUMNS,
        R::TABLE
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(customer_id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(R::from_row)
        .transpose()
}

/// A page of a customer's live rows created before `before`, newest first.
pub async fn list<'e, R: Owned>(
    ex: impl Executor<'e, Database = Any>,
    customer_id: &str,
    before: &str,
    limit: i64,
) -> Result<Vec<R>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM {} WHERE customer_id = $1 AND tm_delete IS NULL AND tm_create < $2 \
         ORDER BY tm_create DESC LIMIT $3",
        R::COLUMNS,
        R::TABLE
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(customer_id)
        .bind(before)
        .bind(limit)
        .fetch_all(ex)
        .await?
        .iter()
        .map(R::from_row)
        .collect()
}

/// Soft-deletes a customer's row; true when a live one was deleted.
pub async fn delete<'e, R: Owned>(
    ex: impl Executor<'e, Database = Any>,
    customer_id: &str,
    id: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE {} SET {}tm_delete = $3, tm_update = $3 \
         WHERE id = $1 AND customer_id = $2 AND tm_delete IS NULL",
        R::TABLE,
        R::DELETE_ALSO
    );
    let done = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .bind(customer_id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Fails with 429 when the customer already has `quota` live rows of this kind.
pub async fn check_quota<'e, R: Owned>(
    ex: impl Executor<'e, Database = Any>,
    customer_id: &str,
    quota: i64,
) -> Result<(), crate::error::ApiError> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM {} WHERE customer_id = $1 AND tm_delete IS NULL",
        R::TABLE
    );
    let n: i64 = sqlx::query(AssertSqlSafe(sql))
        .bind(customer_id)
        .fetch_one(ex)
        .await
        .and_then(|row| sqlx::Row::try_get(&row, "n"))?;
    if n >= quota {
        return Err(crate::error::ApiError::Exhausted {
            message: format!(
                "a customer may have at most {quota} {}s (the operator's --max-per-customer); delete some first",
                R::NAME
            ),
            retry_after: None,
        });
    }
    Ok(())
}
