//! Calls (VoIPBIN's `CallManagerCall`): one row per call leg, written by the call
//! actor as the call moves `dialing -> ringing -> progressing -> terminating ->
//! hangup`, with the hangup's reason and side and the leg's RTP statistics.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use utoipa::ToSchema;

use super::json;
use super::owned::Owned;
use super::param::Param;

/// A party of a call (VoIPBIN's `Address`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Address {
    /// `tel`, `sip`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The number or URI.
    pub target: String,
    /// A display name (`name` in requests is taken too).
    #[serde(default, alias = "name")]
    pub target_name: String,
}

/// The RTP statistics of a call's media leg at hangup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RtpStats {
    /// RTP packets sent to the peer.
    pub packets_sent: u64,
    /// RTP packets received from the peer.
    pub packets_received: u64,
    /// Packets of the peer's stream lost on the way.
    pub packets_lost: i64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Round trip time from RTCP, ms, when measured.
    pub rtt_ms: Option<f64>,
}

/// A call, as the API shows it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Call {
    /// Its id.
    pub id: String,
    /// The owner.
    pub customer_id: String,
    /// The flow it runs.
    pub flow_id: String,
    /// Its activeflow.
    pub activeflow_id: String,
    /// `flow`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The call that dialled this one (`connect`); empty for a call a carrier made.
    pub master_call_id: String,
    /// Calls chained to this one.
    pub chained_call_ids: Vec<String>,
    /// The groupcall that rang this call, or empty.
    pub groupcall_id: String,
    /// The external media the call streamed to (`external_media_start`).
    pub external_media_ids: Vec<String>,
    /// The latest recording.
    pub recording_id: String,
    /// Every recording of the call.
    pub recording_ids: Vec<String>,
    /// Who called.
    pub source: Address,
    /// Who was called.
    pub destination: Address,
    /// dialing, ringing, progressing, terminating, canceling or hangup.
    pub status: String,
    /// incoming or outgoing.
    pub direction: String,
    /// Which way the call is muted: "" (not), in, out or both.
    pub mute_direction: String,
    /// local or remote, once hung up.
    pub hangup_by: String,
    /// normal, failed, busy, cancel, timeout, noanswer, dialout, amd.
    pub hangup_reason: String,
    /// The media leg's statistics at hangup.
    pub rtp_stats: Option<RtpStats>,
    /// Extra data.
    pub metadata: Value,
    /// Ringing since.
    pub tm_ringing: Option<String>,
    /// Answered at.
    pub tm_progressing: Option<String>,
    /// Hung up at.
    pub tm_hangup: Option<String>,
    /// Created at.
    pub tm_create: String,
    /// Last updated at.
    pub tm_update: Option<String>,
    /// Deleted at.
    pub tm_delete: Option<String>,
}

impl Owned for Call {
    const TABLE: &'static str = "calls";
    const NAME: &'static str = "call";
    const COLUMNS: &'static str = "id, customer_id, flow_id, activeflow_id, type, source, destination, status, \
    direction, mute_direction, hangup_by, hangup_reason, recording_ids, rtp_stats, tm_ringing, tm_progressing, tm_hangup, \
    tm_create, tm_update, tm_delete, master_call_id, chained_call_ids, groupcall_id, external_media_ids";

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let recording_ids: Vec<String> = json::column(row, "recording_ids")?;
        Ok(Call {
            id: row.try_get("id")?,
            customer_id: row.try_get("customer_id")?,
            flow_id: row.try_get("flow_id")?,
            activeflow_id: row.try_get("activeflow_id")?,
            kind: row.try_get("type")?,
            master_call_id: row.try_get("master_call_id")?,
            chained_call_ids: json::column(row, "chained_call_ids")?,
            groupcall_id: row.try_get("groupcall_id")?,
            external_media_ids: json::column(row, "external_media_ids")?,
            recording_id: recording_ids.last().cloned().unwrap_or_default(),
            recording_ids,
            source: json::column(row, "source")?,
            destination: json::column(row, "destination")?,
            status: row.try_get("status")?,
            direction: row.try_get("direction")?,
            mute_direction: row.try_get("mute_direction")?,
            hangup_by: row.try_get("hangup_by")?,
            hangup_reason: row.try_get("hangup_reason")?,
            rtp_stats: json::optional_column(row, "rtp_stats")?,
            metadata: Value::Object(Default::default()),
            tm_ringing: row.try_get("tm_ringing")?,
            tm_progressing: row.try_get("tm_progressing")?,
            tm_hangup: row.try_get("tm_hangup")?,
            tm_create: row.try_get("tm_create")?,
            tm_update: row.try_get("tm_update")?,
            tm_delete: row.try_get("tm_delete")?,
        })
    }
}

/// The columns a call's snapshot writes: every one but `metadata` and `tm_delete`
/// (the API's own), in bind order.
const WRITTEN: [&str; 23] = [
    "id",
    "customer_id",
    "flow_id",
    "activeflow_id",
    "type",
    "source",
    "destination",
    "status",
    "direction",
    "tm_create",
    "master_call_id",
    "groupcall_id",
    "hangup_by",
    "hangup_reason",
    "recording_ids",
    "rtp_stats",
    "tm_ringing",
    "tm_progressing",
    "tm_hangup",
    "tm_update",
    "mute_direction",
    "chained_call_ids",
    "external_media_ids",
];

/// The columns a known call's later snapshots change (the rest is fixed at its
/// creation).
const CHANGING: [&str; 12] = [
    "status",
    "hangup_by",
    "hangup_reason",
    "recording_ids",
    "rtp_stats",
    "tm_ringing",
    "tm_progressing",
    "tm_hangup",
    "tm_update",
    "mute_direction",
    "chained_call_ids",
    "external_media_ids",
];

/// The upsert statements, one per size of [`super::upsert::SIZES`]: a new call is
/// inserted, a known one gets the columns a call changes. One statement for tens of
/// rows costs the database one round trip where a statement each cost one per row.
pub static UPSERTS: std::sync::LazyLock<super::upsert::Upserts> =
    std::sync::LazyLock::new(|| super::upsert::statements("calls", &WRITTEN, &CHANGING));

/// A call snapshot's values for [`UPSERTS`], in the order of its written columns.
pub fn upsert_params(c: &Call) -> [Param<'_>; WRITTEN.len()] {
    [
        Param::Text(&c.id),
        Param::Text(&c.customer_id),
        Param::Text(&c.flow_id),
        Param::Text(&c.activeflow_id),
        Param::Text(&c.kind),
        Param::json(&c.source),
        Param::json(&c.destination),
        Param::Text(&c.status),
        Param::Text(&c.direction),
        Param::Text(&c.tm_create),
        Param::Text(&c.master_call_id),
        Param::Text(&c.groupcall_id),
        Param::Text(&c.hangup_by),
        Param::Text(&c.hangup_reason),
        Param::json(&c.recording_ids),
        c.rtp_stats.as_ref().map_or(Param::Null, Param::json),
        Param::opt(c.tm_ringing.as_deref()),
        Param::opt(c.tm_progressing.as_deref()),
        Param::opt(c.tm_hangup.as_deref()),
        Param::opt(c.tm_update.as_deref()),
        Param::Text(&c.mute_direction),
        Param::json(&c.chained_call_ids),
        Param::json(&c.external_media_ids),
    ]
}

/// Closes every call left live by a stop (a crash or restart): hung up, `failed`.
/// Returns how many there were.
pub async fn close_orphans<'e>(
    ex: impl Executor<'e, Database = Any>,
    now: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE calls SET status = 'hangup', hangup_reason = 'failed', hangup_by = 'local', \
         tm_hangup = $1, tm_update = $1 WHERE status <> 'hangup'",
    )
    .bind(now)
    .execute(ex)
    .await?
    .rows_affected())
}
