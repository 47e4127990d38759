//! The engine's storage port: what the call engine needs of storage, and its
//! implementation on the API's database (SQLite or Postgres).
//!
//! The engine (the root package) sees only [`CallStore`]: it loads flows, commits
//! batches of rows with their events, reads another call's hangup reason
//! (`hangup_relay`) and closes what a crash left live. Routing data (providers,
//! numbers) reaches it through [`crate::RoutingCache`], in memory, so an INVITE
//! needs no database round trip. No SQL and no sqlx type crosses this line.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::events::Event;
use crate::store::activeflows::{self, Activeflow};
use crate::store::calls::{self, Call};
use crate::store::flows::Flow;
use crate::store::groupcalls::{self, Groupcall};
use crate::store::owned;
use crate::store::recordings::Recording;

/// A storage call in flight.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

mod batch;

/// The database failed (unreachable, a constraint, a row it could not read). What
/// failed stays inside: the engine sees the message, no driver's type.
#[derive(Debug, thiserror::Error)]
#[error("the database failed: {0}")]
pub struct StoreError(Cause);

/// Which part of storage failed.
#[derive(Debug, thiserror::Error)]
enum Cause {
    /// sqlx (Postgres, and every read).
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// The SQLite file's writer thread.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite writer thread is gone (the store is closing).
    #[error(transparent)]
    Stopped(#[from] crate::store::sqlite_thread::Stopped),
    /// A batch on the SQLite writer thread waited for something, which it never
    /// should: its statements run as they are called.
    #[error("a batch on the SQLite writer thread did not complete at once")]
    Waited,
}

impl<E: Into<Cause>> From<E> for StoreError {
    fn from(cause: E) -> Self {
        Self(cause.into())
    }
}

/// What the calls left live by the last stop were closed as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orphans {
    /// Calls closed as failed.
    pub calls: u64,
    /// Activeflows ended.
    pub activeflows: u64,
    /// Groupcalls marked hung up.
    pub groupcalls: u64,
}

/// What the call engine needs of storage.
pub trait CallStore: Send + Sync {
    /// The customer's flow `flow_id`, if it exists and is not deleted.
    fn flow<'a>(&'a self, customer_id: &'a str, flow_id: &'a str) -> StoreFuture<'a, Option<Flow>>;
    /// The hangup reason of the customer's call `call_id` (empty while it is up).
    fn hangup_reason<'a>(
        &'a self,
        customer_id: &'a str,
        call_id: &'a str,
    ) -> StoreFuture<'a, Option<String>>;
    /// Writes the rows and their events in one transaction, then announces the
    /// events (webhooks, WebSocket); all or nothing.
    fn commit<'a>(&'a self, writes: &'a [&'a Write]) -> StoreFuture<'a, ()>;
    /// Closes the calls and activeflows a crash left live (at start).
    fn close_orphans(&self) -> StoreFuture<'_, Orphans>;
    /// Records a provider's probe: it answered (`healthy`, at `checked_at`) or not.
    fn provider_health<'a>(
        &'a self,
        provider_id: &'a str,
        healthy: bool,
        checked_at: &'a str,
    ) -> StoreFuture<'a, ()>;
}

/// A row to write, and whether it is new. Rows are shared, not copied, when a
/// batch is handed to the writer.
#[derive(Debug, Clone)]
pub enum Row {
    /// A call: inserted, or updated in place.
    Call {
        /// The row.
        call: Arc<Call>,
        /// Insert it (its first write).
        insert: bool,
    },
    /// An activeflow: inserted, or updated in place.
    Activeflow {
        /// The row.
        flow: Arc<Activeflow>,
        /// Insert it (its first write).
        insert: bool,
    },
    /// A recording: inserted when it starts, finished when it ends.
    Recording {
        /// The row.
        recording: Arc<Recording>,
        /// Insert it (the recording started).
        insert: bool,
    },
    /// A groupcall: inserted, or updated in place.
    Groupcall {
        /// The row.
        groupcall: Arc<Groupcall>,
        /// Insert it (its first write).
        insert: bool,
    },
    /// No row: an event only (an action that failed).
    Notice {
        /// The owner.
        customer_id: String,
        /// The resource type the event is about (`activeflow`).
        kind: &'static str,
        /// Its id.
        id: String,
        /// The event's data.
        data: serde_json::Value,
    },
}

/// What happened to a row: the second half of its event's type
/// (`call_created`, `activeflow_updated`, `recording_finished`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// A new row.
    Created,
    /// A changed row.
    Updated,
    /// A row that ends (an activeflow that ended).
    Deleted,
    /// An outgoing call whose INVITE is on its way.
    Dialing,
    /// A call that rings.
    Ringing,
    /// A call answered.
    Progressing,
    /// A call whose BYE is on its way.
    Terminating,
    /// A call given up before its answer.
    Canceling,
    /// A call that is over (`call_hungup`, as the seeds name it).
    Hungup,
    /// A groupcall that is over (`groupcall_hangup`, as the original names it;
    /// the seeds are silent).
    Hangup,
    /// A recording that started.
    Started,
    /// A recording whose file is complete.
    Finished,
    /// An action that failed (`activeflow_action_failed`).
    ActionFailed,
    /// An answering machine detection's verdict (`call_amd_detected`).
    AmdDetected,
    /// The beep at the end of a machine's greeting (`call_amd_beep`).
    AmdBeep,
}

impl Verb {
    /// The name in event types.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Created => "created",
            Verb::Updated => "updated",
            Verb::Deleted => "deleted",
            Verb::Dialing => "dialing",
            Verb::Ringing => "ringing",
            Verb::Progressing => "progressing",
            Verb::Terminating => "terminating",
            Verb::Canceling => "canceling",
            Verb::Hungup => "hungup",
            Verb::Hangup => "hangup",
            Verb::Started => "started",
            Verb::Finished => "finished",
            Verb::ActionFailed => "action_failed",
            Verb::AmdDetected => "amd_detected",
            Verb::AmdBeep => "amd_beep",
        }
    }
}

/// One row and the events it announces (`call_created`, `activeflow_updated`, ...).
#[derive(Debug, Clone)]
pub struct Write {
    /// The row.
    pub row: Row,
    /// Its events, in order.
    pub verbs: Vec<Verb>,
}

impl Write {
    /// A call row and its events.
    pub fn call(call: &Call, insert: bool, verbs: &[Verb]) -> Self {
        Write {
            row: Row::Call {
                call: Arc::new(call.clone()),
                insert,
            },
            verbs: verbs.to_vec(),
        }
    }

    /// An activeflow row and its events.
    pub fn activeflow(flow: &Activeflow, insert: bool, verbs: &[Verb]) -> Self {
        Write {
            row: Row::Activeflow {
                flow: Arc::new(flow.clone()),
                insert,
            },
            verbs: verbs.to_vec(),
        }
    }

    /// A recording row and its event (`started` inserts it).
    pub fn recording(recording: &Recording, verb: Verb) -> Self {
        Write {
            row: Row::Recording {
                recording: Arc::new(recording.clone()),
                insert: verb == Verb::Started,
            },
            verbs: vec![verb],
        }
    }

    /// A groupcall row and its events.
    pub fn groupcall(groupcall: &Groupcall, insert: bool, verbs: &[Verb]) -> Self {
        Write {
            row: Row::Groupcall {
                groupcall: Arc::new(groupcall.clone()),
                insert,
            },
            verbs: verbs.to_vec(),
        }
    }

    /// An event with no row behind it: `<kind>_<verb>` about `id`.
    pub fn notice(
        customer_id: &str,
        kind: &'static str,
        id: &str,
        verb: Verb,
        data: serde_json::Value,
    ) -> Self {
        Write {
            row: Row::Notice {
                customer_id: customer_id.to_owned(),
                kind,
                id: id.to_owned(),
                data,
            },
            verbs: vec![verb],
        }
    }

    /// The resource type and id the write is about, for messages.
    pub fn subject(&self) -> (&'static str, &str) {
        match &self.row {
            Row::Call { call, .. } => ("call", &call.id),
            Row::Activeflow { flow, .. } => ("activeflow", &flow.id),
            Row::Recording { recording, .. } => ("recording", &recording.id),
            Row::Groupcall { groupcall, .. } => ("groupcall", &groupcall.id),
            Row::Notice { kind, id, .. } => (kind, id),
        }
    }

    /// The customer the write belongs to.
    pub(crate) fn customer_id(&self) -> &str {
        match &self.row {
            Row::Call { call, .. } => &call.customer_id,
            Row::Activeflow { flow, .. } => &flow.customer_id,
            Row::Recording { recording, .. } => &recording.customer_id,
            Row::Groupcall { groupcall, .. } => &groupcall.customer_id,
            Row::Notice { customer_id, .. } => customer_id,
        }
    }

    /// The row's events, one per verb.
    pub(crate) fn events(&self, bus: &crate::events::EventBus) -> Vec<Event> {
        let (customer, kind, id, data) = match &self.row {
            Row::Call { call, .. } => (
                &call.customer_id,
                "call",
                &call.id,
                serde_json::to_value(call),
            ),
            Row::Activeflow { flow, .. } => (
                &flow.customer_id,
                "activeflow",
                &flow.id,
                serde_json::to_value(flow),
            ),
            Row::Recording { recording, .. } => (
                &recording.customer_id,
                "recording",
                &recording.id,
                serde_json::to_value(recording),
            ),
            Row::Groupcall { groupcall, .. } => (
                &groupcall.customer_id,
                "groupcall",
                &groupcall.id,
                serde_json::to_value(groupcall),
            ),
            Row::Notice {
                customer_id,
                kind,
                id,
                data,
            } => (customer_id, *kind, id, Ok(data.clone())),
        };
        let mut data = data.unwrap_or_else(|e| {
            tracing::error!(%kind, %id, error = %e, "a row that does not serialize; its event carries null");
            serde_json::Value::Null
        });
        let mut events = Vec::with_capacity(self.verbs.len());
        for (n, verb) in self.verbs.iter().enumerate() {
            let data = if n + 1 == self.verbs.len() {
                std::mem::take(&mut data)
            } else {
                data.clone()
            };
            events.push(bus.event_with(customer, kind, id, verb.as_str(), data));
        }
        events
    }
}

impl CallStore for crate::AppState {
    fn flow<'a>(&'a self, customer_id: &'a str, flow_id: &'a str) -> StoreFuture<'a, Option<Flow>> {
        Box::pin(async move {
            let now = std::time::Instant::now();
            if let Some(flow) = self.flows.get(customer_id, flow_id, now) {
                return Ok(Some(flow));
            }
            let flow = owned::get::<Flow>(self.store.pool(), customer_id, flow_id).await?;
            if let Some(f) = &flow {
                self.flows.put(f, now);
            }
            Ok(flow)
        })
    }

    fn hangup_reason<'a>(
        &'a self,
        customer_id: &'a str,
        call_id: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let call = owned::get::<Call>(self.store.pool(), customer_id, call_id).await?;
            Ok(call.map(|c| c.hangup_reason))
        })
    }

    fn commit<'a>(&'a self, writes: &'a [&'a Write]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let events = commit_batch(&self.store, &self.events, writes).await?;
            for event in events {
                self.events.announce(event);
            }
            Ok(())
        })
    }

    fn provider_health<'a>(
        &'a self,
        provider_id: &'a str,
        healthy: bool,
        checked_at: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            crate::store::providers::set_health(
                self.store.pool(),
                provider_id,
                healthy,
                checked_at,
            )
            .await?;
            Ok(())
        })
    }

    fn close_orphans(&self) -> StoreFuture<'_, Orphans> {
        Box::pin(async move {
            let now = self.stamps.now();
            Ok(Orphans {
                calls: calls::close_orphans(self.store.pool(), &now).await?,
                activeflows: activeflows::close_orphans(self.store.pool(), &now).await?,
                groupcalls: groupcalls::close_orphans(self.store.pool(), &now).await?,
            })
        })
    }
}

/// Writes the rows and their webhook deliveries in one transaction; returns the
/// events to announce once it has committed.
///
/// On a SQLite file the batch goes to the store's writer thread as one job, run
/// against statements prepared once. Elsewhere it runs on the connection sqlx keeps
/// for the call writer, which is given up after a failure.
pub async fn commit_batch(
    store: &crate::store::Store,
    bus: &crate::events::EventBus,
    writes: &[&Write],
) -> Result<Vec<Event>, StoreError> {
    if let Some(thread) = store.sqlite_thread() {
        // The rows are shared with the thread, not copied.
        let writes: Vec<Write> = writes.iter().map(|w| (*w).clone()).collect();
        let bus = bus.clone();
        return thread
            .run(move |conn| batch::commit_on_sqlite(conn, &bus, &writes))
            .await?;
    }
    let mut writer = store.writer().await?;
    let result = async {
        let mut tx = writer.begin().await?;
        let events = batch::write_batch(&mut *tx, bus, writes).await?;
        tx.commit().await?;
        Ok(events)
    }
    .await;
    if result.is_err() {
        writer.discard();
    }
    result
}
