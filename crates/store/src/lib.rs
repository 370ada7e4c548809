//! brygga-store: the bridge's persistence, [`brygga_core::Store`] on SQLite
//! (embedded default) and PostgreSQL (HUB scale).
//!
//! Queries are written once against sqlx's `Any` driver (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING` work on both backends). Reads go through a
//! connection pool. Every write goes through one writer task per store that
//! group-commits: it takes all requests waiting in its channel, runs them in
//! one database transaction, commits once and then answers each caller. That
//! amortises the fsync of a durable commit over many callers and assigns
//! outbox sequence numbers in commit order.
//!
//! ```no_run
//! # async fn demo() -> Result<(), brygga_core::StoreError> {
//! let store = brygga_store::SqlStore::connect("sqlite:///var/lib/brygga/brygga.db").await?;
//! assert_eq!(store.backend_name(), "sqlite");
//! # Ok(()) }
//! ```

mod announce;
mod batch;
mod checkpoint;
mod codec;
mod connect;
mod feed;
mod management;
mod ops;
mod options;
mod reads;
mod shards;
mod store_impl;
mod write_complete;
mod write_entities;
mod write_outbox;
mod writer;

use std::sync::Arc;

use sqlx::AnyPool;

pub use announce::Heard;
pub use options::{Backend, StoreOptions, Synchronous};
pub use writer::WriteStats;

/// A [`brygga_core::Store`] backed by SQLite or PostgreSQL. Cheap to clone;
/// clones share the pools and the writer task.
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    writer: writer::Writer,
    /// For connections outside the pools (migrations on a running store).
    connect: sqlx::any::AnyConnectOptions,
    /// SQLite only: WAL checkpoints off the writer's path.
    checkpointer: Option<checkpoint::Checkpointer>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password, so only the backend is shown.
        f.debug_struct("SqlStore").field("backend", &self.inner.backend).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod complete_tests;
#[cfg(test)]
mod feed_tests;
#[cfg(test)]
mod tests;
