//! Group commit for the rows the calls write (calls, activeflows, recordings) and
//! their events, through the storage port ([`api::call_store::CallStore`]).
//!
//! A call writes about eight times in its life (created, each action, progressing,
//! hung up). At hundreds of calls a second a transaction each costs more than the
//! calls themselves on SQLite, so one task takes every write waiting in its queue and
//! commits them in one transaction, then announces their events. A call does not
//! wait for its writes ([`Writer::submit`]): its answer, prompts and keys never wait
//! for a commit. Writes are committed in the order they were submitted, so a call's
//! rows and events keep their order; its last write ([`Writer::write`]) is waited
//! for, so a call is over only once every row of it is in the database. A batch
//! that fails is retried one write at a time, each tried again after 0.25, 1 and
//! 4 s, so neither one bad row nor a database busy for a while loses the others.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use api::call_store::{CallStore, Write};

/// The most writes one transaction takes.
const BATCH: usize = 2048;

/// Under load (the last batch held at least [`BUSY_BATCH`] writes) a batch starts
/// no sooner than this after the one before, so writes gather: a call's several
/// status changes become one row write, and the transaction's fixed costs are
/// paid tens of times a second, not once per write. Idle, a write goes at once.
/// At 10 ms the database thread spent 0.60 s per 5,000 calls (`perf stat` over
/// `benches/b2bua-load.sh 500 20`), at 25 ms 0.42 s: a call's setup (created,
/// ringing, answered) lands in one batch more often, and each batch's pages are
/// written once for more rows. An event is announced at most this much later
/// under load.
const BUSY_PACE: std::time::Duration = std::time::Duration::from_millis(25);

/// A batch at least this large means the database is kept busy.
const BUSY_BATCH: usize = 8;

/// Writes waiting for the next commit, and who to tell when they are in.
struct Job {
    writes: Vec<Write>,
    done: Option<oneshot::Sender<()>>,
    /// When it was queued: how far behind the database is.
    queued: std::time::Instant,
}

/// The handle the calls write through.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writing task on `store`.
    /// Each batch tells `load` how long its oldest write waited, so a database that
    /// falls behind sheds new calls.
    pub fn start(store: Arc<dyn CallStore>, load: Option<Arc<crate::overload::LoadGauge>>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx, load));
        Writer { tx }
    }

    /// Queues the rows for the next commit and returns at once.
    pub fn submit(&self, writes: Vec<Write>) {
        if let Err(lost) = self.tx.send(Job {
            writes,
            done: None,
            queued: std::time::Instant::now(),
        }) {
            // The writing task ends only with the runtime (a shutdown).
            log_failure(&lost.0.writes, &"the server is stopping");
        }
    }

    /// Queues the rows and returns once they (and everything queued before them) are
    /// committed and their events announced. A failure is logged (the call goes on:
    /// its audio matters more than its row).
    pub async fn write(&self, writes: Vec<Write>) {
        let (done, wait) = oneshot::channel();
        match self.tx.send(Job {
            writes,
            done: Some(done),
            queued: std::time::Instant::now(),
        }) {
            Ok(()) => {
                if wait.await.is_err() {
                    tracing::error!("the writing task stopped before committing a call's rows");
                }
            }
            Err(lost) => log_failure(&lost.0.writes, &"the server is stopping"),
        }
    }
}

/// The writing task: one transaction per batch of waiting jobs.
async fn run(
    store: Arc<dyn CallStore>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    load: Option<Arc<crate::overload::LoadGauge>>,
) {
    let mut next_start: Option<tokio::time::Instant> = None;
    while let Some(first) = rx.recv().await {
        if let Some(at) = next_start {
            tokio::time::sleep_until(at).await;
        }
        let started = tokio::time::Instant::now();
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
        next_start = (count >= BUSY_BATCH).then(|| started + BUSY_PACE);
        let all: Vec<&Write> = jobs.iter().flat_map(|j| &j.writes).collect();
        match if all.is_empty() {
            // Only waiters for what came before: nothing to write.
            Ok(())
        } else {
            store.commit(&all).await
        } {
            Ok(()) => {}
            Err(_) if all.len() == 1 => commit_one(store.as_ref(), all[0]).await,
            Err(_) => {
                // Find the bad row: each write on its own, each tried again a few
                // times (a database that is busy or restarting comes back).
                for write in &all {
                    commit_one(store.as_ref(), write).await;
                }
            }
        }
        if let (Some(load), Some(oldest)) = (&load, jobs.first()) {
            load.storage_waited(oldest.queued.elapsed());
        }
        for job in jobs {
            if let Some(done) = job.done {
                // The call may have stopped waiting (its task was aborted): nothing
                // to tell then.
                done.send(()).ok();
            }
        }
    }
}

/// Waits before each new try of a write that failed.
const RETRY: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(250),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(4),
];

/// Commits one write, trying again after each of [`RETRY`]'s waits; a write that
/// still fails is logged with its id (a row that breaks a constraint, say).
async fn commit_one(store: &dyn CallStore, write: &Write) {
    let mut last = match store.commit(std::slice::from_ref(&write)).await {
        Ok(()) => return,
        Err(e) => e,
    };
    for wait in RETRY {
        tokio::time::sleep(wait).await;
        match store.commit(std::slice::from_ref(&write)).await {
            Ok(()) => return,
            Err(e) => last = e,
        }
    }
    log_failure([write], &last);
}

fn log_failure<'a>(writes: impl IntoIterator<Item = &'a Write>, error: &dyn std::fmt::Display) {
    for write in writes {
        let (kind, id) = write.subject();
        tracing::error!(%kind, %id, %error, "writing the row failed");
    }
}
