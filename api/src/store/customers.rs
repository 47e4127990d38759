//! Customers: the tenants. Every other row carries a `customer_id`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

/// A customer, as the API shows it (VoIPBIN's `CustomerManagerCustomer`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    /// Its id.
    pub id: String,
    /// The login name.
    pub username: String,
    /// A display name.
    pub name: String,
    /// Notes.
    pub detail: String,
    /// Contact email.
    pub email: String,
    /// Contact phone number.
    pub phone_number: String,
    /// Postal address.
    pub address: String,
    /// The HTTP method for webhooks: POST, PUT, GET or "".
    pub webhook_method: String,
    /// Where events are delivered; "" for none.
    pub webhook_uri: String,
    /// `active` or `deleted`.
    pub status: String,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
    /// The HMAC key for webhook signatures; write-only through the API.
    #[serde(skip)]
    pub webhook_secret: String,
    /// Whether this is the platform's operator.
    #[serde(skip)]
    pub is_admin: bool,
    /// The argon2 hash of the password.
    #[serde(skip)]
    pub password_hash: String,
}

macro_rules! columns {
    () => {
        "id, username, password_hash, name, detail, email, phone_number, address, \
    webhook_method, webhook_uri, webhook_secret, is_admin, status, tm_create, tm_update, tm_delete"
    };
}

fn from_row(row: &AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        name: row.try_get("name")?,
        detail: row.try_get("detail")?,
        email: row.try_get("email")?,
        phone_number: row.try_get("phone_number")?,
        address: row.try_get("address")?,
        webhook_method: row.try_get("webhook_method")?,
        webhook_uri: row.try_get("webhook_uri")?,
        webhook_secret: row.try_get("webhook_secret")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        status: row.try_get("status")?,
        tm_create: row.try_get("tm_create")?,
        tm_update: row.try_get("tm_update")?,
        tm_delete: row.try_get("tm_delete")?,
    })
}

/// Inserts a customer.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    c: &Customer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customers (id, username, password_hash, name, detail, email, phone_number, \
         address, webhook_method, webhook_uri, webhook_secret, is_admin, status, tm_create) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&c.id)
    .bind(&c.username)
    .bind(&c.password_hash)
    .bind(&c.name)
    .bind(&c.detail)
    .bind(&c.email)
    .bind(&c.phone_number)
    .bind(&c.address)
    .bind(&c.webhook_method)
    .bind(&c.webhook_uri)
    .bind(&c.webhook_secret)
    .bind(i64::from(c.is_admin))
    .bind(&c.status)
    .bind(&c.tm_create)
    .execute(ex)
    .await?;
    Ok(())
}

/// A live (not deleted) customer by id.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM customers WHERE id = $1 AND tm_delete IS NULL"
    );
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A live customer by username.
pub async fn get_by_username<'e>(
    ex: impl Executor<'e, Database = Any>,
    username: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM customers WHERE username = $1 AND tm_delete IS NULL"
    );
    sqlx::query(sql)
        .bind(username)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// A page of live customers, newest first.
pub async fn list<'e>(
    ex: impl Executor<'e, Database = Any>,
    before: &str,
    limit: i64,
) -> Result<Vec<Customer>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM customers WHERE tm_delete IS NULL AND tm_create < $1 \
         ORDER BY tm_create DESC LIMIT $2"
    );
    sqlx::query(sql)
        .bind(before)
        .bind(limit)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// How many customers exist, deleted ones included.
pub async fn count<'e>(ex: impl Executor<'e, Database = Any>) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM customers")
        .fetch_one(ex)
        .await?
        .try_get("n")
}

/// Writes the updatable fields of `c`.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    c: &Customer,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE customers SET name = $2, detail = $3, email = $4, phone_number = $5, address = $6, \
         webhook_method = $7, webhook_uri = $8, webhook_secret = $9, tm_update = $10 \
         WHERE id = $1 AND tm_delete IS NULL",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.detail)
    .bind(&c.email)
    .bind(&c.phone_number)
    .bind(&c.address)
    .bind(&c.webhook_method)
    .bind(&c.webhook_uri)
    .bind(&c.webhook_secret)
    .bind(&c.tm_update)
    .execute(ex)
    .await?;
    Ok(())
}

/// Soft-deletes a customer; true when a live one was deleted.
pub async fn delete<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE customers SET status = 'deleted', tm_delete = $2, tm_update = $2 \
         WHERE id = $1 AND tm_delete IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The platform admin's id, once the admin exists.
pub async fn admin_id<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM customers WHERE is_admin = 1 AND tm_delete IS NULL ORDER BY tm_create LIMIT 1")
        .fetch_optional(ex)
        .await?
        .map(|row| row.try_get("id"))
        .transpose()
}
