//! The webhook outbox: one row per delivery of one event to one URI.
//!
//! A row is written in the transaction of the change that caused the event, before
//! the request is answered, so no event is lost to a crash or restart. The sender
//! picks due rows, and records each attempt's outcome on the row.

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::param::{Param, bind_all};

/// A delivery waiting to be sent.
pub const PENDING: &str = "pending";
/// A delivery the receiver accepted.
pub const DELIVERED: &str = "delivered";
/// A delivery that failed every attempt.
pub const FAILED: &str = "failed";

/// One webhook delivery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: String,
    /// Whose event it is.
    pub customer_id: String,
    /// The event's type, for example `flow_created`.
    pub event_type: String,
    /// Where to send it.
    pub uri: String,
    /// The HTTP method.
    pub method: String,
    /// The exact body to send.
    pub body: String,
    /// pending, delivered or failed.
    pub status: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at: String,
    /// Why the last attempt failed.
    pub last_error: String,
    /// Created at.
    pub tm_create: String,
}

macro_rules! columns {
    () => {
        "id, customer_id, event_type, uri, method, body, status, attempts, next_attempt_at, last_error, tm_create"
    };
}

fn from_row(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        event_type: row.try_get("event_type")?,
        uri: row.try_get("uri")?,
        method: row.try_get("method")?,
        body: row.try_get("body")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        tm_create: row.try_get("tm_create")?,
    })
}

/// Writes a new pending delivery ([`insert_params`]).
pub const INSERT: &str = "INSERT INTO webhook_deliveries (id, customer_id, event_type, uri, method, body, \
    status, attempts, next_attempt_at, last_error, tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// A delivery's values for [`INSERT`].
pub fn insert_params(d: &Delivery) -> [Param<'_>; 11] {
    [
        Param::Text(&d.id),
        Param::Text(&d.customer_id),
        Param::Text(&d.event_type),
        Param::Text(&d.uri),
        Param::Text(&d.method),
        Param::Text(&d.body),
        Param::Text(&d.status),
        Param::Int(d.attempts),
        Param::Text(&d.next_attempt_at),
        Param::Text(&d.last_error),
        Param::Text(&d.tm_create),
    ]
}

/// Writes a new pending delivery.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    d: &Delivery,
) -> Result<(), sqlx::Error> {
    bind_all(sqlx::query(INSERT), &insert_params(d))
        .execute(ex)
        .await?;
    Ok(())
}

/// Pending deliveries due at `now`, oldest first.
pub async fn due<'e>(
    ex: impl Executor<'e, Database = Any>,
    now: &str,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, tm_create LIMIT $2"
    );
    sqlx::query(sql)
        .bind(now)
        .bind(limit)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Claims a due delivery for one attempt: moves its due time to `lease_until`, so no
/// other pass or node picks it while the attempt runs, and a crash mid-attempt only
/// delays it until the lease ends. Succeeds only when the row is still pending, due
/// at `now` and at `attempts` attempts, so a stale read can never attempt it twice.
pub async fn claim<'e>(
    ex: impl Executor<'e, Database = Any>,
    d: &Delivery,
    now: &str,
    lease_until: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $4, tm_update = $3 \
         WHERE id = $1 AND attempts = $2 AND status = 'pending' AND next_attempt_at <= $3",
    )
    .bind(&d.id)
    .bind(d.attempts)
    .bind(now)
    .bind(lease_until)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// When the earliest pending delivery is due.
pub async fn next_due<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries WHERE status = 'pending'")
        .fetch_one(ex)
        .await?
        .try_get("t")
}

/// Records an attempt's outcome: the new status, attempt count, next due time and
/// error.
pub async fn record_attempt<'e>(
    ex: impl Executor<'e, Database = Any>,
    d: &Delivery,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_error = $5, \
         tm_update = $6 WHERE id = $1",
    )
    .bind(&d.id)
    .bind(&d.status)
    .bind(d.attempts)
    .bind(&d.next_attempt_at)
    .bind(&d.last_error)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// A customer's deliveries, newest first (for inspection and tests).
pub async fn list_for_customer<'e>(
    ex: impl Executor<'e, Database = Any>,
    customer_id: &str,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_deliveries WHERE customer_id = $1 ORDER BY tm_create DESC LIMIT $2"
    );
    sqlx::query(sql)
        .bind(customer_id)
        .bind(limit)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}
