//! Telling the other processes on a shared PostgreSQL store which queues
//! got new entries. The writer sends a `NOTIFY` inside the transaction that
//! stores them (so it is delivered exactly when they are committed); the
//! other processes `LISTEN` and wake the queues they own. A missed
//! notification costs only time: the queues' periodic sweep still finds the
//! entries, and a listener that lost its connection asks for a full resync.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use brygga_core::{Backoff, Direction, PortalKey};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::SqlStore;
use crate::ops::Op;

/// The channel commits are announced on.
const CHANNEL: &str = "brygga_commits";
/// PostgreSQL refuses payloads of 8000 bytes and more.
const MAX_PAYLOAD: usize = 7000;

/// What another process committed, as heard by this one.
#[derive(Debug)]
#[non_exhaustive]
pub enum Heard {
    /// New entries in these queues.
    Queues(Vec<(PortalKey, Direction)>),
    /// Announcements may have been missed: every queue may have new entries.
    Resync,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    from: String,
    queues: Vec<(PortalKey, Direction)>,
}

/// The announcements of a batch of ops from node `from`, within size limits.
pub(crate) fn payloads(from: &str, ops: &[&Op]) -> Vec<String> {
    let mut queues = BTreeSet::new();
    for op in ops {
        match op {
            Op::Enqueue(entry) => {
                queues.insert((entry.portal.clone(), entry.direction));
            }
            Op::Ingest { entries, .. } => queues.extend(entries.iter().map(|e| (e.portal.clone(), e.direction))),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut chunk = Payload { from: from.to_owned(), queues: Vec::new() };
    for queue in queues {
        chunk.queues.push(queue);
        let size = serde_json::to_string(&chunk).map(|s| s.len()).unwrap_or(usize::MAX);
        if size > MAX_PAYLOAD && chunk.queues.len() > 1 {
            let last = chunk.queues.pop().expect("just pushed");
            out.extend(serde_json::to_string(&chunk).ok());
            chunk.queues = vec![last];
        }
    }
    if !chunk.queues.is_empty() {
        out.extend(serde_json::to_string(&chunk).ok());
    }
    out
}

/// Sends the announcements inside the writer's transaction.
pub(crate) async fn send(conn: &mut sqlx::AnyConnection, payloads: Vec<String>) -> Result<(), sqlx::Error> {
    for payload in payloads {
        sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS n")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl SqlStore {
    /// Announces this store's commits of outbox entries to the other
    /// processes, as node `node` (PostgreSQL only; set once).
    pub fn announce_commits(&self, node: &str) {
        let _ = self.inner.writer.announce_as(node);
    }

    /// Listens for other nodes' commits until `stop`; `heard` is called for
    /// each announcement not sent by `node`, and with [`Heard::Resync`]
    /// whenever the connection was (re)established.
    pub fn listen_for_commits(&self, node: &str, heard: Arc<dyn Fn(Heard) + Send + Sync>, stop: CancellationToken) {
        let url = self.inner.connect.database_url.to_string();
        let node = node.to_owned();
        tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
            loop {
                let started = tokio::time::Instant::now();
                let session = listen(&url, &node, heard.as_ref());
                let err = tokio::select! {
                    _ = stop.cancelled() => return,
                    err = session => err,
                };
                if started.elapsed() > Duration::from_secs(60) {
                    backoff.reset();
                }
                tracing::warn!(error = %err, "listening for other processes' commits failed; reconnecting");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        });
    }
}

/// One listening session; returns why it ended.
async fn listen(url: &str, node: &str, heard: &(dyn Fn(Heard) + Send + Sync)) -> sqlx::Error {
    let mut listener = match PgListener::connect(url).await {
        Ok(listener) => listener,
        Err(err) => return err,
    };
    if let Err(err) = listener.listen(CHANNEL).await {
        return err;
    }
    tracing::debug!("listening for other processes' commits");
    heard(Heard::Resync);
    loop {
        match listener.try_recv().await {
            Ok(Some(note)) => match serde_json::from_str::<Payload>(note.payload()) {
                Ok(payload) if payload.from == node => {}
                Ok(payload) => heard(Heard::Queues(payload.queues)),
                Err(err) => tracing::warn!(error = %err, "an announcement did not decode; ignored"),
            },
            // The connection dropped; announcements in between are lost.
            Ok(None) => heard(Heard::Resync),
            Err(err) => return err,
        }
    }
}
