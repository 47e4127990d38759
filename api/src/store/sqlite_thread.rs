//! One rusqlite connection to the SQLite file, on a thread of its own, for the
//! writer that never stops: the call rows ([`crate::call_store`]).
//!
//! sqlx runs each SQLite connection on a worker thread too, but every statement is
//! a message there and an answer back, the `Any` driver copies each value it binds,
//! and its statement cache sits behind them. Here a whole batch is one job: the
//! thread runs it against statements it prepared once, and wakes the caller once.
//! The API's reads and its own writes keep sqlx's pool; SQLite's WAL lets them read
//! beside this writer, and `busy_timeout` makes writers wait for each other.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Statements the thread keeps prepared: every size of each upsert and the
/// batch's other statements, with room to spare.
const PREPARED: usize = 32;

/// A job for the thread: a closure over its connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The thread's connection and the queue of jobs to it.
pub struct SqliteThread {
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Why the thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite refused the file or a setting.
    #[error("opening the SQLite file for the call writer: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The thread could not be started.
    #[error("starting the SQLite writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The thread has stopped (the store was closed), or the job panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SQLite writer thread has stopped")]
pub struct Stopped;

impl SqliteThread {
    /// Opens `path` (already created and migrated by sqlx) with the pool's
    /// settings and starts the thread.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let conn = Connection::open(path)?;
        // As the pool's connections (`Store::open`): WAL so that readers run beside
        // the writer, no fsync per commit, wait for another writer rather than
        // fail, statement journals in memory.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(PREPARED);
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Some(job) = queue.blocking_recv() {
                    // A job that panics loses its own answer (its caller sees
                    // `Stopped`), not the thread: an open transaction rolls back as
                    // it unwinds.
                    let run = std::panic::AssertUnwindSafe(|| job(&mut conn));
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::error!("a job on the SQLite writer thread panicked");
                    }
                }
            })?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `job` on the thread's connection and returns what it returned.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> R + Send + 'static,
    ) -> Result<R, Stopped> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have stopped waiting; the work is done either way.
            reply.send(job(conn)).ok();
        });
        let sent = match self.jobs.lock() {
            Ok(jobs) => jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Err(Stopped);
        }
        answer.await.map_err(|_| Stopped)
    }

    /// Stops taking jobs, lets the queued ones finish and waits for the thread to
    /// close the connection.
    pub async fn close(&self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            match tokio::task::spawn_blocking(move || thread.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("the SQLite writer thread panicked"),
                Err(e) => tracing::error!(error = %e, "waiting for the SQLite writer thread"),
            }
        }
    }
}

impl std::fmt::Debug for SqliteThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteThread")
    }
}
