//! Background WAL checkpoints for SQLite. SQLite's automatic checkpoint runs
//! inside the commit that crosses the threshold, on the writer, stalling
//! every caller of that batch while pages are copied and the database file
//! is synced. A separate connection checkpoints instead (PASSIVE: it never
//! blocks the writer or readers), so the copying overlaps with writing. The
//! writer keeps a high auto-checkpoint threshold as a safety net.

use std::time::Duration;

use brygga_core::StoreError;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
use tokio::sync::watch;

/// Stops the checkpoint task when dropped or stopped.
pub(crate) struct Checkpointer {
    stop: watch::Sender<bool>,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts the task.
    pub(crate) async fn spawn(connect: &AnyConnectOptions, setup: String, every: Duration) -> Result<Self, StoreError> {
        let mut conn = AnyConnection::connect_with(connect)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open the checkpoint connection: {e}")))?;
        conn.execute(sqlx::raw_sql(AssertSqlSafe(setup)))
            .await
            .map_err(|e| StoreError::Database(format!("cannot set up the checkpoint connection: {e}")))?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    // A stop request or the store being dropped.
                    _ = stopped.changed() => break,
                }
                if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_all(&mut conn).await {
                    tracing::warn!(%error, "SQLite WAL checkpoint failed; will retry");
                }
            }
            let _ = conn.close().await;
        });
        Ok(Self { stop })
    }

    /// Ends the task after its current checkpoint.
    pub(crate) fn stop(&self) {
        let _ = self.stop.send(true);
    }
}
