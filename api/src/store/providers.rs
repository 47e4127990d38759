//! Providers: the carriers that peer with the platform (VoIPBIN's route-manager
//! `Provider`), with the source addresses their calls may come from and the target
//! and credentials for calls towards them. Platform-wide: the admin owns them.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Executor, Row};
use utoipa::ToSchema;

use super::json;
use super::owned::Owned;

/// A provider, as the API shows it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Provider {
    /// Its id.
    pub id: String,
    /// The owner (the admin).
    #[serde(skip)]
    pub customer_id: String,
    /// `sip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The outbound target's host (for calls towards the carrier).
    pub hostname: String,
    /// The outbound target's port.
    pub port: i64,
    /// The outbound transport: `udp` or `tcp`.
    pub transport: String,
    /// Prepended to dialled numbers.
    pub tech_prefix: String,
    /// Appended to dialled numbers.
    pub tech_postfix: String,
    /// Headers added to outbound INVITEs.
    pub tech_headers: BTreeMap<String, String>,
    /// Where its calls may come from: CIDR blocks (`203.0.113.0/24`, `127.0.0.1/32`).
    pub allowed_sources: Vec<String>,
    /// The digest username for the carrier's challenges; the password is write-only.
    pub auth_username: String,
    /// The most calls from it that may be up at once (0: no limit); more get 503.
    pub max_concurrent_calls: i64,
    /// `unknown`, `healthy` (it answers SIP OPTIONS probes) or `unhealthy` (it
    /// stopped answering: tried after the others).
    pub health_status: String,
    /// When it last answered a probe.
    pub health_checked_at: Option<String>,
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
    /// The digest password (never shown).
    #[serde(skip)]
    pub auth_password: String,
}

impl Owned for Provider {
    const TABLE: &'static str = "providers";
    const NAME: &'static str = "provider";
    const COLUMNS: &'static str = "id, customer_id, type, hostname, port, transport, tech_prefix, tech_postfix, \
    tech_headers, allowed_sources, auth_username, auth_password, max_concurrent_calls, name, detail, tm_create, tm_update, tm_delete, health_status, health_checked_at";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Provider {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            kind: row.try_get("type")?,
            hostname: row.try_get("hostname")?,
            port: row.try_get("port")?,
            transport: row.try_get("transport")?,
            tech_prefix: row.try_get("tech_prefix")?,
            tech_postfix: row.try_get("tech_postfix")?,
            tech_headers: json::column(row, "tech_headers")?,
            allowed_sources: json::column(row, "allowed_sources")?,
            auth_username: row.try_get("auth_username")?,
            auth_password: row.try_get("auth_password")?,
            max_concurrent_calls: row.try_get("max_concurrent_calls")?,
            health_status: row.try_get("health_status")?,
            health_checked_at: row.try_get("health_checked_at")?,
            name: row.try_get("name")?,
            detail: row.try_get("detail")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
        })
    }
}

/// Binds the fields an insert and an update both write, as `$2`..`$13` after the id.
fn bind_fields<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    p: &'q Provider,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    q.bind(&p.hostname)
        .bind(p.port)
        .bind(&p.transport)
        .bind(&p.tech_prefix)
        .bind(&p.tech_postfix)
        .bind(json::text(&p.tech_headers))
        .bind(json::text(&p.allowed_sources))
        .bind(&p.auth_username)
        .bind(&p.auth_password)
        .bind(p.max_concurrent_calls)
        .bind(&p.name)
        .bind(&p.detail)
}

/// Inserts a provider.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    p: &Provider,
) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO providers (id, hostname, port, transport, tech_prefix, tech_postfix, tech_headers, \
         allowed_sources, auth_username, auth_password, max_concurrent_calls, name, detail, customer_id, type, \
         tm_create) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&p.id);
    bind_fields(q, p)
        .bind(&p.customer_id)
        .bind(&p.kind)
        .bind(&p.tm_create)
        .execute(ex)
        .await?;
    Ok(())
}

/// Writes every field of a provider but its id, owner and creation time.
pub async fn update<'e>(
    ex: impl Executor<'e, Database = Any>,
    p: &Provider,
) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "UPDATE providers SET hostname = $2, port = $3, transport = $4, tech_prefix = $5, tech_postfix = $6, \
         tech_headers = $7, allowed_sources = $8, auth_username = $9, auth_password = $10, \
         max_concurrent_calls = $11, name = $12, detail = $13, tm_update = $14 WHERE id = $1 AND tm_delete IS NULL",
    )
    .bind(&p.id);
    bind_fields(q, p).bind(&p.tm_update).execute(ex).await?;
    Ok(())
}

/// Every live provider, for routing calls by their source address.
pub async fn all_live<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> Result<Vec<Provider>, sqlx::Error> {
    let sql = AssertSqlSafe(format!(
        "SELECT {} FROM providers WHERE tm_delete IS NULL ORDER BY tm_create",
        <Provider as Owned>::COLUMNS
    ));
    sqlx::query(sql)
        .fetch_all(ex)
        .await?
        .iter()
        .map(<Provider as Owned>::from_row)
        .collect()
}

/// How many providers were ever made (zero on a fresh database).
pub async fn count_all<'e>(ex: impl Executor<'e, Database = Any>) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM providers")
        .fetch_one(ex)
        .await?
        .try_get("n")
}

/// Reads `203.0.113.0/24`, `127.0.0.1` or `2001:db8::/32` as a CIDR block, written
/// back in canonical form.
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| format!("{text:?} is not an address or CIDR block"))
}

/// Records a probe's outcome: `healthy` stamps `checked_at` as the last answer;
/// `unhealthy` keeps the last answer's time.
pub async fn set_health<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    healthy: bool,
    checked_at: &str,
) -> Result<(), sqlx::Error> {
    let sql = if healthy {
        "UPDATE providers SET health_status = 'healthy', health_checked_at = $2 WHERE id = $1"
    } else {
        "UPDATE providers SET health_status = 'unhealthy' WHERE id = $1 AND $2 = $2"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(checked_at)
        .execute(ex)
        .await?;
    Ok(())
}
