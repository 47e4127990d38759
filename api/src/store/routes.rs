//! Routes: which providers carry a customer's outbound calls, by priority and by
//! the dialled number's prefix (VoIPBIN's route-manager `Route`). Kept by the
//! admin, like providers.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Executor, Row};
use utoipa::ToSchema;

use super::owned::Owned;

/// A route, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Route {
    /// Its id.
    pub id: String,
    /// The keeper (the admin).
    #[serde(skip)]
    pub owner_id: String,
    /// The customer whose calls it carries; empty for a default route, which every
    /// customer falls back to after its own.
    pub customer_id: String,
    /// The provider that carries the calls.
    pub provider_id: String,
    /// Lower first.
    pub priority: i64,
    /// The numbers it carries: a prefix of the number's digits (`1`, `4420`), or
    /// `all`.
    pub target: String,
    /// A name.
    pub name: String,
    /// Notes.
    pub detail: String,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl Route {
    /// Whether the route carries `number` (`+15551234567` or digits).
    pub fn matches(&self, number: &str) -> bool {
        self.target == "all" || number.trim_start_matches('+').starts_with(&self.target)
    }
}

impl Owned for Route {
    const TABLE: &'static str = "routes";
    const NAME: &'static str = "route";
    const COLUMNS: &'static str = "id, customer_id, route_customer_id, provider_id, priority, target, name, detail, \
    tm_create, tm_update, tm_delete";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Route {
            id: row.try_get("id")?,
            owner_id: row.try_get("customer_id")?,
            customer_id: row.try_get("route_customer_id")?,
            provider_id: row.try_get("provider_id")?,
            priority: row.try_get("priority")?,
            target: row.try_get("target")?,
            name: row.try_get("name")?,
            detail: row.try_get("detail")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
        })
    }
}

/// Binds the fields an insert and an update both write, as `$2`..`$7` after the id.
fn bind_fields<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    r: &'q Route,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    q.bind(&r.customer_id)
        .bind(&r.provider_id)
        .bind(r.priority)
        .bind(&r.target)
        .bind(&r.name)
        .bind(&r.detail)
}

/// Inserts a route.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &Route,
) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO routes (id, route_customer_id, provider_id, priority, target, name, detail, customer_id, \
         tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.id);
    bind_fields(q, r)
        .bind(&r.owner_id)
        .bind(&r.tm_create)
        .execute(ex)
        .await?;
    Ok(())
}

/// Writes every field of a route but its id, keeper and creation time.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &Route,
) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "UPDATE routes SET route_customer_id = $2, provider_id = $3, priority = $4, target = $5, name = $6, \
         detail = $7, tm_update = $8 WHERE id = $1",
    )
    .bind(&r.id);
    bind_fields(q, r).bind(&r.tm_update).execute(ex).await?;
    Ok(())
}

/// Every live route, for the engine's routing table.
pub async fn all_live<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<Vec<Route>, sqlx::Error> {
    let sql = AssertSqlSafe(format!(
        "SELECT {} FROM routes WHERE tm_delete IS NULL ORDER BY tm_create",
        <Route as Owned>::COLUMNS
    ));
    sqlx::query(sql)
        .fetch_all(ex)
        .await?
        .iter()
        .map(<Route as Owned>::from_row)
        .collect()
}
