//! Group commit for the rows the call actors write (calls, activeflows, recordings)
//! and their events.
//!
//! A call writes about eight times in its life (created, each action, progressing,
//! hung up). At hundreds of calls a second a transaction each costs more than the
//! calls themselves on SQLite (a lock, a WAL frame and a round trip to the database
//! thread per statement), so one task takes every write waiting in its queue and
//! commits them in one transaction; each actor waits until its writes are
//! committed, then their events are announced. A batch that fails is retried one
//! write at a time, so one bad row does not lose the others.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use api::events::{Event, WebhookTarget};
use api::store::activeflows::{self, Activeflow};
use api::store::calls::{self, Call};
use api::store::recordings::{self, Recording};

/// The most writes one transaction takes.
const BATCH: usize = 256;

/// A row to write, and whether it is new.
#[derive(Debug, Clone)]
pub enum Row {
    /// A call: inserted, or updated in place.
    Call {
        /// The row.
        call: Box<Call>,
        /// Insert it (its first write).
        insert: bool,
    },
    /// An activeflow: inserted, or updated in place.
    Activeflow {
        /// The row.
        flow: Box<Activeflow>,
        /// Insert it (its first write).
        insert: bool,
    },
    /// A recording: inserted when it starts, finished when it ends.
    Recording {
        /// The row.
        recording: Box<Recording>,
        /// Insert it (the recording started).
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

/// One row and the event verbs it announces (`call_created`, `activeflow_updated`, ...).
#[derive(Debug, Clone)]
pub struct Write {
    /// The row.
    pub row: Row,
    /// The verbs of its events, in order.
    pub verbs: Vec<&'static str>,
}

impl Write {
    /// A call row and its events.
    pub fn call(call: &Call, insert: bool, verbs: &[&'static str]) -> Self {
        Write {
            row: Row::Call {
                call: Box::new(call.clone()),
                insert,
            },
            verbs: verbs.to_vec(),
        }
    }

    /// An activeflow row and its events.
    pub fn activeflow(flow: &Activeflow, insert: bool, verbs: &[&'static str]) -> Self {
        Write {
            row: Row::Activeflow {
                flow: Box::new(flow.clone()),
                insert,
            },
            verbs: verbs.to_vec(),
        }
    }

    /// A recording row and its event (`started` inserts it).
    pub fn recording(recording: &Recording, verb: &'static str) -> Self {
        Write {
            row: Row::Recording {
                recording: Box::new(recording.clone()),
                insert: verb == "started",
            },
            verbs: vec![verb],
        }
    }

    /// An event with no row behind it: `<kind>_<verb>` about `id`.
    pub fn notice(
        customer_id: &str,
        kind: &'static str,
        id: &str,
        verb: &'static str,
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

    /// The row's events, one per verb.
    fn events(&self, state: &api::AppState) -> Vec<Event> {
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
            Row::Notice {
                customer_id,
                kind,
                id,
                data,
            } => (customer_id, *kind, id, Ok(data.clone())),
        };
        let data = data.unwrap_or(serde_json::Value::Null);
        self.verbs
            .iter()
            .map(|verb| state.events.event(customer, kind, id, verb, &data))
            .collect()
    }
}

/// Writes waiting for the next commit, and who to tell.
struct Job {
    writes: Vec<Write>,
    done: oneshot::Sender<()>,
}

/// The handle the actors write through.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writing task on the API's state (its database and event bus).
    pub fn start(state: api::AppState) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(state, rx));
        Writer { tx }
    }

    /// Writes the rows in one transaction with others waiting, and returns once it
    /// is committed and its events announced. A failure is logged (the call goes on:
    /// its audio matters more than its row).
    pub async fn write(&self, writes: Vec<Write>) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job { writes, done }).is_ok() {
            // The task only ends with the runtime.
            let _ = wait.await;
        }
    }
}

/// The writing task: one transaction per batch of waiting jobs.
async fn run(state: api::AppState, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut count = jobs[0].writes.len();
        while count < BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.writes.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let all: Vec<&Write> = jobs.iter().flat_map(|j| &j.writes).collect();
        match commit(&state, &all).await {
            Ok(events) => announce(&state, events),
            Err(e) if jobs.len() == 1 && all.len() == 1 => log_failure(&all, &e),
            Err(_) => {
                // Find the bad row: each write on its own.
                for write in &all {
                    match commit(&state, std::slice::from_ref(write)).await {
                        Ok(events) => announce(&state, events),
                        Err(e) => log_failure(std::slice::from_ref(write), &e),
                    }
                }
            }
        }
        for job in jobs {
            let _ = job.done.send(());
        }
    }
}

/// Commits the writes and their webhook deliveries in one transaction; returns the
/// events to announce.
async fn commit(state: &api::AppState, writes: &[&Write]) -> Result<Vec<Event>, sqlx::Error> {
    let mut tx = state.store.begin().await?;
    let mut targets: HashMap<String, Option<WebhookTarget>> = HashMap::new();
    let mut events = Vec::new();
    for write in writes {
        match &write.row {
            Row::Call { call, insert } => {
                if *insert {
                    calls::insert(&mut *tx, call).await?;
                }
                calls::update(&mut *tx, call).await?;
            }
            Row::Activeflow { flow, insert: true } => activeflows::insert(&mut *tx, flow).await?,
            Row::Activeflow { flow, .. } => activeflows::update(&mut *tx, flow).await?,
            Row::Recording {
                recording,
                insert: true,
            } => recordings::insert(&mut *tx, recording).await?,
            Row::Recording { recording, .. } => recordings::finish(&mut *tx, recording).await?,
            Row::Notice { .. } => {}
        }
        for event in write.events(state) {
            // One lookup of the customer's webhook per batch.
            let target = match targets.get(&event.customer_id) {
                Some(t) => t.clone(),
                None => {
                    let t = state
                        .events
                        .webhook_target(&mut tx, &event.customer_id)
                        .await?;
                    targets.insert(event.customer_id.clone(), t.clone());
                    t
                }
            };
            state
                .events
                .record_to(&mut tx, &event, target.as_ref())
                .await?;
            events.push(event);
        }
    }
    tx.commit().await?;
    Ok(events)
}

fn announce(state: &api::AppState, events: Vec<Event>) {
    for event in events {
        state.events.announce(event);
    }
}

fn log_failure(writes: &[&Write], error: &sqlx::Error) {
    for write in writes {
        let (kind, id) = match &write.row {
            Row::Call { call, .. } => ("call", &call.id),
            Row::Activeflow { flow, .. } => ("activeflow", &flow.id),
            Row::Recording { recording, .. } => ("recording", &recording.id),
            Row::Notice { kind, id, .. } => (*kind, id),
        };
        tracing::error!(%kind, %id, %error, "writing the row failed");
    }
}
