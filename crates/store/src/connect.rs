//! Opening a store: connection pools, pragmas, migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use brygga_core::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use crate::checkpoint::Checkpointer;
use crate::options::{Backend, StoreOptions, Synchronous, parse_url};
use crate::{Inner, SqlStore, WriteStats, writer};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

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
    /// (migrations run here, before the writer task starts). Must be called
    /// inside a Tokio runtime: the writer (and, for SQLite, the checkpoint)
    /// task is spawned on it and lives as long as the store.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let parsed = parse_url(url)?;
        let connect = AnyConnectOptions::from_str(&parsed.sqlx_url).map_err(pool_error)?;
        let synchronous = parsed.synchronous.unwrap_or(options.synchronous);
        let (write, read) = match parsed.backend {
            Backend::Sqlite => sqlite_pools(connect.clone(), synchronous, &options).await?,
            Backend::Postgres => postgres_pools(connect.clone(), &options).await?,
        };
        migrate_pool(parsed.backend, &write).await?;
        let checkpointer = match parsed.backend {
            Backend::Sqlite => {
                let setup = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = {};",
                    options.busy_timeout.as_millis(),
                    synchronous.pragma_value()
                );
                Some(Checkpointer::spawn(&connect, setup, CHECKPOINT_EVERY).await?)
            }
            Backend::Postgres => None,
        };
        let writer = writer::Writer::spawn(write.clone(), parsed.backend, options.max_batch);
        Ok(SqlStore { inner: Arc::new(Inner { backend: parsed.backend, read, write, writer, connect, checkpointer }) })
    }

    /// Applies pending migrations; idempotent ([`SqlStore::connect`] already
    /// calls it). Uses a connection of its own: the writer keeps its one.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = AnyConnection::connect_with(&self.inner.connect).await.map_err(pool_error)?;
        let result = migrator(self.inner.backend)
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Database(format!("database migration failed: {e}")));
        let _ = conn.close().await;
        result
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

    /// Commits the writes already queued, then closes the writer and the
    /// pools; later calls on this store (and its clones) fail.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        if let Some(checkpointer) = &self.inner.checkpointer {
            checkpointer.stop();
        }
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

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

async fn migrate_pool(backend: Backend, pool: &AnyPool) -> Result<(), StoreError> {
    migrator(backend).run(pool).await.map_err(|e| StoreError::Database(format!("database migration failed: {e}")))
}

/// The writer checkpoints by itself only if the background checkpointer
/// falls this far behind (pages; 4 KiB each).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// Bytes the WAL file is truncated to when it is reset.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// How often the background checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

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
         PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};",
        synchronous.pragma_value()
    )
    .into();
    let read_setup: Arc<str> = format!("PRAGMA busy_timeout = {busy_ms}; PRAGMA query_only = ON;").into();
    let write = sqlite_pool(connect.clone(), 1, options, write_setup).await?;
    let read = sqlite_pool(connect, options.read_connections.max(1), options, read_setup).await?;
    Ok((write, read))
}

/// A SQLite pool whose connections run `setup` (PRAGMAs) when opened.
async fn sqlite_pool(
    connect: AnyConnectOptions,
    connections: u32,
    options: &StoreOptions,
    setup: Arc<str>,
) -> Result<AnyPool, StoreError> {
    AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections.min(1))
        .test_before_acquire(false)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(move |conn, _| {
            let sql = setup.clone();
            Box::pin(async move {
                conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql))).await?;
                Ok(())
            })
        })
        .connect_with(connect)
        .await
        .map_err(pool_error)
}

/// sqlx pings a connection when it is released, so acquiring need not ping
/// again (that would add a round trip to every read).
///
/// The writer's statements look rows up by key for batches of bounded size,
/// so per-key index lookups are always the right plan. Its prepared
/// statements are planned once, though, often on a fresh database whose
/// tables are still empty, where hash joins over whole-table scans look as
/// cheap, and keep those plans as the tables grow. Its session therefore
/// rules out scans and join methods that read whole tables (they stay
/// possible where no index applies).
async fn postgres_pools(connect: AnyConnectOptions, options: &StoreOptions) -> Result<(AnyPool, AnyPool), StoreError> {
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(|conn, _| {
            Box::pin(async move {
                let sql = "SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off";
                conn.execute(sqlx::raw_sql(sql)).await?;
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
        .connect_with(connect)
        .await
        .map_err(pool_error)?;
    Ok((write, read))
}
