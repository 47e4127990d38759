//! Storage: one set of migrations and queries over sqlx's `Any` driver, so the same
//! code runs on the embedded SQLite file (the default) and on Postgres
//! (`DATABASE_URL=postgres://...`).
//!
//! Queries are checked at run time, never with the `query!` macros, so building never
//! needs a database. Placeholders are written `$1, $2, ...`, which both drivers accept.
//!
//! One writer differs: on a SQLite file the call rows go through rusqlite on a
//! thread of their own ([`sqlite_thread`]), with the same SQL text and the same
//! parameter lists ([`param`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection, Executor};

use sqlite_thread::SqliteThread;

pub mod accesskeys;
pub mod activeflows;
pub mod calls;
pub mod customers;
pub mod deliveries;
pub mod flows;
pub mod groupcalls;
pub mod json;
pub mod numbers;
pub mod owned;
pub mod page;
pub mod param;
pub mod providers;
pub mod recordings;
pub mod routes;
pub mod settings;
pub mod sqlite_thread;
pub mod upsert;

/// An open, migrated database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The connection the call writer keeps on Postgres and on an in-memory SQLite
    /// database (see [`Store::writer`]).
    writer: Arc<tokio::sync::Mutex<Option<PoolConnection<Any>>>>,
    /// The call writer's own connection and thread on a SQLite file (see
    /// [`Store::sqlite_thread`]).
    sqlite_thread: Option<Arc<SqliteThread>>,
}

/// The call writer's own connection from the pool (on Postgres and on an in-memory
/// SQLite database; a SQLite file has [`SqliteThread`]), held while it writes one
/// batch.
///
/// The pool hands its idle connections out in turn: one connection for the stream
/// of batches keeps its prepared statements, and on SQLite its page cache, which
/// SQLite drops whenever another connection wrote since its last transaction.
pub struct Writer {
    guard: tokio::sync::OwnedMutexGuard<Option<PoolConnection<Any>>>,
    backend: Backend,
}

impl Writer {
    /// Starts the batch's transaction (on SQLite, taking the write lock at once, as
    /// [`Store::begin`] does).
    pub async fn begin(&mut self) -> Result<sqlx::Transaction<'_, Any>, sqlx::Error> {
        let Some(conn) = self.guard.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        }
    }

    /// Gives the connection up after a failed batch: the next batch takes a fresh
    /// one from the pool.
    pub fn discard(&mut self) {
        *self.guard = None;
    }
}

/// Which database the store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A Postgres server.
    Postgres,
}

/// The embedded migrations, shared by both backends.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens `url` (`sqlite://path` or `postgres://...`), creating a SQLite file and
    /// its directory when missing, and runs the migrations.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                format!("unsupported database URL {url:?}: use sqlite://PATH or postgres://...")
                    .into(),
            ));
        };
        let (url, file) = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => (url.to_owned(), None),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; busy_timeout makes
                        // writers wait for each other instead of failing.
                        conn.execute("PRAGMA journal_mode=WAL").await?;
                        conn.execute("PRAGMA synchronous=NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout=10000").await?;
                        // A statement that writes many rows in a transaction keeps a
                        // statement journal; in a temporary file that is a file
                        // created, written and unlinked per statement (a strace of
                        // the call writer under load showed one every few batches).
                        conn.execute("PRAGMA temp_store=MEMORY").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        // An in-memory database is the pool's own: another connection would see
        // another database, so the call writer uses the pool there.
        let sqlite_thread = match file {
            Some(file) => Some(Arc::new(
                SqliteThread::open(&file).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?,
            )),
            None => None,
        };
        Ok(Self {
            pool,
            backend,
            writer: Arc::default(),
            sqlite_thread,
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that may write.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads and then writes fails with "database is locked" when
    /// another connection wrote in between, and waiting cannot help it. With the lock
    /// taken up front, writers queue on `busy_timeout` instead.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The call writer's connection (taken from the pool the first time, and again
    /// after [`Writer::discard`]); one batch at a time. On a SQLite file the call
    /// writer uses [`Store::sqlite_thread`] instead.
    pub async fn writer(&self) -> Result<Writer, sqlx::Error> {
        let mut guard = self.writer.clone().lock_owned().await;
        if guard.is_none() {
            *guard = Some(self.pool.acquire().await?);
        }
        Ok(Writer {
            guard,
            backend: self.backend,
        })
    }

    /// The call writer's connection on its own thread, on a SQLite file (`None` on
    /// Postgres and on an in-memory SQLite database: use [`Store::writer`]).
    pub fn sqlite_thread(&self) -> Option<&SqliteThread> {
        self.sqlite_thread.as_deref()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        // The writers' connections go first: the pool waits for every one of its
        // own, and the thread's queued batches are written before it stops.
        if let Some(thread) = &self.sqlite_thread {
            thread.close().await;
        }
        self.writer.lock().await.take();
        self.pool.close().await;
    }
}

/// Turns `sqlite://path` into a URL that creates the file, creating its directory;
/// with the file's path (as sqlx reads it: a percent-encoded name decoded), `None`
/// for an in-memory database.
fn sqlite_url(url: &str) -> Result<(String, Option<std::path::PathBuf>), sqlx::Error> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    let url = format!("sqlite://{path}?{query}");
    if path == ":memory:" || path.is_empty() || query.contains("mode=memory") {
        return Ok((url, None));
    }
    let file = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?
        .get_filename()
        .to_path_buf();
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            sqlx::Error::Configuration(format!("cannot create {}: {e}", dir.display()).into())
        })?;
    }
    Ok((url, Some(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_names_the_file_sqlx_opens_and_creates_its_directory() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}/a%20b/v.db", dir.path().display());
        let (url, file) = sqlite_url(&url).expect("a file URL");
        assert!(url.ends_with("/a%20b/v.db?mode=rwc"), "{url}");
        let file = file.expect("a file");
        assert_eq!(file, dir.path().join("a b").join("v.db"));
        assert!(dir.path().join("a b").is_dir());
        assert_eq!(sqlite_url("sqlite::memory:").expect("memory").1, None);
        let (_, file) = sqlite_url("sqlite://x.db?mode=memory").expect("memory mode");
        assert_eq!(file, None);
    }
}
