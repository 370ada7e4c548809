//! Per-portal ordered delivery with parallelism across portals.
//!
//! Each (portal, direction) queue has at most one worker task. The worker
//! pulls undelivered entries from the store in sequence order and delivers
//! them one at a time, so order survives crashes and restarts: the store, not
//! memory, is the source of truth. A wake is a coalescing signal; a worker
//! that has been idle for a while exits and is respawned by the next wake.
//!
//! Marking an entry done is pipelined: a companion task commits completes
//! (in delivery order) while the worker already delivers the next entry. A
//! crash before a complete commits re-delivers that entry with the same
//! transaction id, which the other side ignores.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::BridgeError;
use crate::ids::PortalKey;
use crate::store::{Direction, MessageMapping, OutboxEntry, Store};

/// One ordered queue: a portal in one direction.
pub type QueueKey = (PortalKey, Direction);

/// Delivers one stored entry; returns the message-map rows it created.
#[async_trait]
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `entry`. Transient errors are retried, permanent ones dead-lettered.
    async fn deliver(&self, entry: &OutboxEntry) -> Result<Vec<MessageMapping>, BridgeError>;

    /// Called once the completion of a delivered entry is durable.
    fn settled(&self, _seq: i64) {}
}

/// Delivered entries whose completes may be in flight at once per queue.
const IN_FLIGHT: usize = 64;

/// A delivered entry waiting to be marked done.
type Done = (i64, Vec<MessageMapping>);

/// Backoff between retries of one entry.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// First delay.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// How long an idle worker lingers before exiting.
    pub idle: Duration,
    /// Entries fetched per store read.
    pub batch: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            batch: 128,
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, requested: Option<Duration>) -> Duration {
        let exp = self.initial.saturating_mul(1u32 << attempt.min(16));
        requested.unwrap_or_default().max(exp.min(self.max))
    }
}

/// The set of queues and their workers.
#[derive(Clone)]
pub struct Queues {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    deliver: Arc<dyn Deliver>,
    policy: RetryPolicy,
    workers: Mutex<HashMap<QueueKey, (u64, mpsc::Sender<()>)>>,
    next_worker: AtomicU64,
    shutdown: CancellationToken,
}

impl Queues {
    /// Creates the queue set; no worker runs until a queue is woken.
    pub fn new(store: Arc<dyn Store>, deliver: Arc<dyn Deliver>, policy: RetryPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                deliver,
                policy,
                workers: Mutex::new(HashMap::new()),
                next_worker: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Signals that a queue may have new entries, starting its worker if needed.
    pub fn wake(&self, key: QueueKey) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let mut workers = self.inner.workers.lock().expect("queue map poisoned");
        if let Some((_, tx)) = workers.get(&key) {
            // A full channel already holds a wake: nothing is lost.
            let _ = tx.try_send(());
            return;
        }
        let (tx, rx) = mpsc::channel(1);
        let id = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
        workers.insert(key.clone(), (id, tx));
        let (done, completions) = mpsc::channel(IN_FLIGHT);
        tokio::spawn(complete_in_order(self.inner.clone(), completions));
        tokio::spawn(Worker { inner: self.inner.clone(), key, id, rx, done }.run());
    }

    /// Wakes every queue that has undelivered entries (at start-up).
    pub async fn recover(&self) -> Result<usize, BridgeError> {
        let queues = self.inner.store.pending_queues().await?;
        let count = queues.len();
        for key in queues {
            self.wake(key);
        }
        Ok(count)
    }

    /// Wakes every queue with undelivered entries now and then, so that no
    /// entry waits for a wake that was never sent; ends on shutdown.
    pub fn spawn_sweeper(&self, every: Duration) {
        let queues = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = queues.inner.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Err(err) = queues.recover().await {
                    tracing::warn!(error = %err, "sweeping the outbox failed");
                }
            }
        });
    }

    /// Number of queues with a running worker.
    pub fn active(&self) -> usize {
        self.inner.workers.lock().expect("queue map poisoned").len()
    }

    /// Stops all workers after their current entry.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }
}

struct Worker {
    inner: Arc<Inner>,
    key: QueueKey,
    id: u64,
    rx: mpsc::Receiver<()>,
    /// To the task that marks delivered entries done.
    done: mpsc::Sender<Done>,
}

impl Worker {
    async fn run(mut self) {
        let mut after = 0;
        let mut read_failures = 0;
        loop {
            while self.rx.try_recv().is_ok() {}
            let (portal, direction) = &self.key;
            let batch = match self.inner.store.pending(portal, *direction, after, self.inner.policy.batch).await {
                Ok(batch) => {
                    read_failures = 0;
                    batch
                }
                Err(err) => {
                    tracing::warn!(portal = %portal, error = %err, "reading the outbox failed");
                    read_failures += 1;
                    if self.sleep(self.inner.policy.delay(read_failures, None)).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                if self.idle().await {
                    return;
                }
                continue;
            }
            let complete = batch.len() < self.inner.policy.batch as usize;
            for entry in batch {
                if !self.process(&entry).await {
                    return;
                }
                after = entry.seq;
            }
            // Wakes are sent after their entries commit and were drained
            // before the read: with no wake since, a short batch was all
            // there is, and reading again would only find nothing.
            if complete && self.rx.try_recv().is_err() && self.idle().await {
                return;
            }
        }
    }

    /// Delivers one entry until it is done or dead-lettered; false on shutdown.
    async fn process(&self, entry: &OutboxEntry) -> bool {
        let store = &self.inner.store;
        let mut attempt = 0;
        loop {
            if self.inner.shutdown.is_cancelled() {
                return false;
            }
            // A panicking delivery must not kill the worker and strand the queue.
            let outcome = AssertUnwindSafe(self.inner.deliver.deliver(entry)).catch_unwind().await;
            let outcome = outcome.unwrap_or_else(|_| Err(BridgeError::transient("delivery panicked")));
            match outcome {
                // The completer outlives the worker: it ends once `done` is dropped.
                Ok(mappings) => return self.done.send((entry.seq, mappings)).await.is_ok(),
                Err(BridgeError::Transient { message, retry_after }) => {
                    tracing::info!(portal = %self.key.0, seq = entry.seq, attempt, error = %message, "delivery failed; will retry");
                    let _ = store.record_failure(entry.seq, &message).await;
                    attempt += 1;
                    if self.sleep(self.inner.policy.delay(attempt, retry_after)).await {
                        return false;
                    }
                }
                Err(err) => {
                    tracing::error!(portal = %self.key.0, seq = entry.seq, error = %err, "delivery failed permanently; dead-lettered");
                    let mut failures = 0;
                    while let Err(store_err) = store.dead_letter(entry.seq, &err.to_string()).await {
                        failures += 1;
                        tracing::warn!(seq = entry.seq, error = %store_err, "dead-lettering failed; retrying");
                        if self.sleep(self.inner.policy.delay(failures, None)).await {
                            return false;
                        }
                    }
                    return true;
                }
            }
        }
    }

    /// Waits for a wake; exits (returning true) after the idle time or on shutdown.
    async fn idle(&mut self) -> bool {
        tokio::select! {
            _ = self.inner.shutdown.cancelled() => return true,
            woke = self.rx.recv() => return woke.is_none(),
            _ = tokio::time::sleep(self.inner.policy.idle) => {}
        }
        let mut workers = self.inner.workers.lock().expect("queue map poisoned");
        // Wakes are sent under this lock, so none can slip in between the
        // check and the removal.
        if self.rx.try_recv().is_ok() {
            return false;
        }
        workers.remove(&self.key);
        true
    }

    /// Sleeps; true when shutting down.
    async fn sleep(&self, delay: Duration) -> bool {
        self.inner.sleep(delay).await
    }
}

impl Inner {
    /// Sleeps; true when shutting down.
    async fn sleep(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => true,
            _ = tokio::time::sleep(delay) => false,
        }
    }

    /// Marks a delivered entry done, retrying until it commits or shutdown.
    async fn complete(&self, seq: i64, mappings: Vec<MessageMapping>) {
        let mut failures = 0;
        while let Err(err) = self.store.complete(seq, mappings.clone()).await {
            tracing::warn!(seq, error = %err, "recording a delivery failed; retrying");
            failures += 1;
            if self.sleep(self.policy.delay(failures, None)).await {
                return;
            }
        }
        self.deliver.settled(seq);
    }
}

/// Marks one queue's delivered entries done. All that are waiting are
/// submitted together, in delivery order, so they share group commits and
/// commit no later than the entries delivered after them.
async fn complete_in_order(inner: Arc<Inner>, mut completions: mpsc::Receiver<Done>) {
    let mut batch = Vec::with_capacity(IN_FLIGHT);
    while completions.recv_many(&mut batch, IN_FLIGHT).await > 0 {
        futures::future::join_all(batch.drain(..).map(|(seq, mappings)| inner.complete(seq, mappings))).await;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A panicking delivery must not leave a stale sender that swallows wakes.
        if let Ok(mut workers) = self.inner.workers.lock()
            && workers.get(&self.key).is_some_and(|(id, _)| *id == self.id)
        {
            workers.remove(&self.key);
        }
    }
}
