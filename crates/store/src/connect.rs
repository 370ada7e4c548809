//! Opening a store: URL parsing, connection pools, pragmas, migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use brygga_core::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::{Inner, SqlStore, WriteStats, writer};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file, the embedded default.
    Sqlite,
    /// A PostgreSQL server, for a HUB.
    Postgres,
}

impl Backend {
    /// Stable lower-case name: `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// SQLite's `synchronous` pragma: how hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// No fsync; a power loss may lose recent commits or corrupt the file.
    Off,
    /// In WAL mode: a power loss may lose the latest commits, never corrupts.
    Normal,
    /// Every commit is on disk before it is acknowledged (the default).
    #[default]
    Full,
    /// Like `Full`, also syncing the directory after deleting journal files.
    Extra,
}

impl Synchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

impl FromStr for Synchronous {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Ok(Self::Off),
            "normal" | "1" => Ok(Self::Normal),
            "full" | "2" => Ok(Self::Full),
            "extra" | "3" => Ok(Self::Extra),
            _ => Err(StoreError::Database(format!(
                "invalid synchronous setting {s:?}: expected off, normal, full or extra"
            ))),
        }
    }
}

/// Tuning for [`SqlStore::connect_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreOptions {
    /// SQLite durability; a `synchronous=` URL query parameter overrides it.
    pub synchronous: Synchronous,
    /// Size of the read pool.
    pub read_connections: u32,
    /// Most write requests committed in one transaction.
    pub max_batch: usize,
    /// How long SQLite waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// How long a caller waits for a pooled connection.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            read_connections: 4,
            max_batch: 1024,
            busy_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

impl StoreOptions {
    /// Sets the SQLite `synchronous` pragma.
    pub fn synchronous(mut self, value: Synchronous) -> Self {
        self.synchronous = value;
        self
    }

    /// Sets the read pool size (at least 1).
    pub fn read_connections(mut self, n: u32) -> Self {
        self.read_connections = n.max(1);
        self
    }

    /// Sets the largest group-commit batch (at least 1).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }
}

/// A URL split into what sqlx understands and our own parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    pub backend: Backend,
    pub sqlx_url: String,
    pub synchronous: Option<Synchronous>,
}

/// Accepts `sqlite://PATH[?synchronous=...]` and `postgres://...`.
pub(crate) fn parse_url(url: &str) -> Result<ParsedUrl, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(ParsedUrl {
            backend: Backend::Postgres,
            sqlx_url: url.to_owned(),
            synchronous: None,
        });
    }
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Err(StoreError::Database(
            "unsupported database URL: expected sqlite://PATH or postgres://...".into(),
        ));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Database(
            "SQLite needs a file path (sqlite://PATH): the store uses WAL and several connections".into(),
        ));
    }
    let mut synchronous = None;
    let mut has_mode = false;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "synchronous" => synchronous = Some(value.parse()?),
            "mode" if value == "memory" => {
                return Err(StoreError::Database(
                    "SQLite mode=memory is not supported; use a file".into(),
                ));
            }
            "mode" => {
                has_mode = true;
                kept.push(pair);
            }
            _ => kept.push(pair),
        }
    }
    if !has_mode {
        // Create the database file when it is missing.
        kept.push("mode=rwc");
    }
    Ok(ParsedUrl {
        backend: Backend::Sqlite,
        sqlx_url: format!("sqlite://{path}?{}", kept.join("&")),
        synchronous,
    })
}

fn pool_error(err: sqlx::Error) -> StoreError {
    StoreError::Database(format!("cannot open database: {err}"))
}

impl SqlStore {
    /// Opens `sqlite://PATH` (created if missing) or `postgres://...` with
    /// default options and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Opens a store with explicit options and brings the schema up to date
    /// (migrations run here, before the writer task starts).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let parsed = parse_url(url)?;
        let connect = AnyConnectOptions::from_str(&parsed.sqlx_url).map_err(pool_error)?;
        let synchronous = parsed.synchronous.unwrap_or(options.synchronous);
        let (write, read) = match parsed.backend {
            Backend::Sqlite => sqlite_pools(connect, synchronous, &options).await?,
            Backend::Postgres => postgres_pools(connect, &options).await?,
        };
        migrate_pool(parsed.backend, &write).await?;
        let writer = writer::Writer::spawn(write.clone(), parsed.backend, options.max_batch);
        Ok(SqlStore {
            inner: Arc::new(Inner {
                backend: parsed.backend,
                read,
                write,
                writer,
            }),
        })
    }

    /// Applies pending migrations; idempotent ([`SqlStore::connect`] already
    /// calls it).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate_pool(self.inner.backend, &self.inner.write).await
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Counters of the group-commit writer.
    pub fn write_stats(&self) -> WriteStats {
        self.inner.writer.stats()
    }

    /// Closes the pools; later calls fail. Pending writes already accepted
    /// by the writer still commit first.
    pub async fn close(&self) {
        self.inner.read.close().await;
        self.inner.write.close().await;
    }

    pub(crate) fn read_pool(&self) -> &AnyPool {
        &self.inner.read
    }

    pub(crate) fn writer(&self) -> &writer::Writer {
        &self.inner.writer
    }
}

async fn migrate_pool(backend: Backend, pool: &AnyPool) -> Result<(), StoreError> {
    let migrator = match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Database(format!("database migration failed: {e}")))
}

/// One writer connection and a read pool. WAL lets readers run while the
/// writer commits; readers are `query_only` so the writer stays the only
/// connection that ever takes SQLite's write lock.
async fn sqlite_pools(
    connect: AnyConnectOptions,
    synchronous: Synchronous,
    options: &StoreOptions,
) -> Result<(AnyPool, AnyPool), StoreError> {
    let busy_ms = options.busy_timeout.as_millis();
    let write_setup: Arc<str> = format!(
        "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        synchronous.pragma_value()
    )
    .into();
    let read_setup: Arc<str> = format!("PRAGMA busy_timeout = {busy_ms}; PRAGMA query_only = ON;").into();
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _| {
            let sql = write_setup.clone();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql))).await?;
                Ok(())
            })
        })
        .connect_with(connect.clone())
        .await
        .map_err(pool_error)?;
    let read = AnyPoolOptions::new()
        .max_connections(options.read_connections.max(1))
        .test_before_acquire(false)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _| {
            let sql = read_setup.clone();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql))).await?;
                Ok(())
            })
        })
        .connect_with(connect)
        .await
        .map_err(pool_error)?;
    Ok((write, read))
}

async fn postgres_pools(connect: AnyConnectOptions, options: &StoreOptions) -> Result<(AnyPool, AnyPool), StoreError> {
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect.clone())
        .await
        .map_err(pool_error)?;
    let read = AnyPoolOptions::new()
        .max_connections(options.read_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(pool_error)?;
    Ok((write, read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_gain_create_mode_and_lose_our_parameters() {
        let p = parse_url("sqlite:///tmp/x/brygga.db?synchronous=normal").unwrap();
        assert_eq!(p.backend, Backend::Sqlite);
        assert_eq!(p.sqlx_url, "sqlite:///tmp/x/brygga.db?mode=rwc");
        assert_eq!(p.synchronous, Some(Synchronous::Normal));

        let p = parse_url("sqlite://data.db?mode=rw").unwrap();
        assert_eq!(p.sqlx_url, "sqlite://data.db?mode=rw");
        assert_eq!(p.synchronous, None);
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        let err = parse_url("mysql://x").unwrap_err().to_string();
        assert!(err.contains("unsupported database URL"), "{err}");
        assert!(parse_url("sqlite::memory:").is_err());
        assert!(parse_url("sqlite://db?mode=memory").is_err());
        let err = parse_url("sqlite://db?synchronous=sometimes").unwrap_err().to_string();
        assert!(err.contains("synchronous"), "{err}");
    }

    #[test]
    fn postgres_urls_pass_through() {
        let url = "postgres://postgres@127.0.0.1:5432/db";
        let p = parse_url(url).unwrap();
        assert_eq!(p.backend, Backend::Postgres);
        assert_eq!(p.sqlx_url, url);
    }
}
