//! Per-portal ordered delivery with parallelism across portals.
//!
//! Each (portal, direction) queue has at most one worker task. The worker
//! delivers undelivered entries in sequence order, one at a time, so order
//! survives crashes and restarts: the store, not memory, is the source of
//! truth. A wake is a coalescing signal; a worker that has been idle for a
//! while exits and is respawned by the next wake.
//!
//! Reading back every entry this process just stored would cost a store read
//! per wake, so a store that can hands each commit's entries to the queues
//! ([`CommitListener`]). That is only a fast path. A worker delivers handed
//! entries only while it is in sync: it has read the store since it started
//! or was last told to (a plain wake, a commit the store flags as possibly
//! preceded by entries stored elsewhere, an inbox overflow), and no such
//! signal has arrived since. Commits are handed over in seq order, so a
//! worker in sync misses nothing between its last entry and the next.
//!
//! Marking an entry done is pipelined: a companion task commits completes
//! (in delivery order) while the worker already delivers the next entry. A
//! crash before a complete commits re-delivers that entry with the same
//! transaction id, which the other side ignores.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::BridgeError;
use crate::ids::{PortalKey, TenantId};
use crate::observe::DeliveryObserver;
use crate::shard::{Owners, Ownership};
use crate::store::{CommitListener, Direction, MessageMapping, OutboxEntry, Store};

mod inbox;

use inbox::{INBOX_LIMIT, Slot};

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
    /// Itself, for spawning workers from the commit listener.
    me: Weak<Inner>,
    store: Arc<dyn Store>,
    deliver: Arc<dyn Deliver>,
    policy: RetryPolicy,
    workers: Mutex<HashMap<QueueKey, Slot>>,
    next_worker: AtomicU64,
    shutdown: CancellationToken,
    /// Whether the store hands over its commits.
    fed: AtomicBool,
    /// Who learns of delivery outcomes (metrics), once set.
    observer: std::sync::OnceLock<Arc<dyn DeliveryObserver>>,
    /// Which tenants this process delivers for.
    owners: Owners,
}

/// How long ago `stored_at` (ms since the Unix epoch) was, if known.
fn waited(stored_at: i64) -> Option<Duration> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    (stored_at > 0).then(|| Duration::from_millis(now.saturating_sub(stored_at).max(0) as u64))
}

impl Queues {
    /// Has `observer` learn of every delivery outcome from now on (set once).
    pub fn observe(&self, observer: Arc<dyn DeliveryObserver>) {
        let _ = self.inner.observer.set(observer);
    }

    /// Delivers only for the tenants `ownership` says this process owns
    /// (set once, before any queue is woken).
    pub fn set_ownership(&self, ownership: Arc<dyn Ownership>) {
        self.inner.owners.set(ownership);
    }

    /// Creates the queue set; no worker runs until a queue is woken.
    pub fn new(store: Arc<dyn Store>, deliver: Arc<dyn Deliver>, policy: RetryPolicy) -> Self {
        Self::owned_by(store, deliver, policy, Owners::default())
    }

    /// A queue set that delivers only for the tenants `owners` says.
    pub fn owned_by(store: Arc<dyn Store>, deliver: Arc<dyn Deliver>, policy: RetryPolicy, owners: Owners) -> Self {
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            store,
            deliver,
            policy,
            workers: Mutex::new(HashMap::new()),
            next_worker: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
            fed: AtomicBool::new(false),
            observer: std::sync::OnceLock::new(),
            owners,
        });
        let listener: Weak<dyn CommitListener> = inner.me.clone();
        let fed = inner.store.watch_commits(listener);
        inner.fed.store(fed, Ordering::Relaxed);
        Self { inner }
    }

    /// Signals that a queue may have new entries in the store, starting its
    /// worker if needed; the worker reads the store.
    pub fn wake(&self, key: QueueKey) {
        if self.inner.shutdown.is_cancelled() || !self.inner.owns(&key.0.tenant) {
            return;
        }
        let mut workers = self.inner.workers.lock().expect("queue map poisoned");
        match workers.get(&key) {
            Some(slot) => slot.resync(),
            None => {
                self.inner.spawn(&mut workers, key);
            }
        }
    }

    /// Signals that this process just stored entries of a queue through the
    /// store given to [`Queues::new`]. If that store hands over its commits,
    /// the entries are with the queue already and nothing needs reading;
    /// otherwise this is a [`Queues::wake`].
    pub fn stored(&self, key: QueueKey) {
        if !self.inner.fed.load(Ordering::Relaxed) {
            return self.wake(key);
        }
        if self.inner.shutdown.is_cancelled() || !self.inner.owns(&key.0.tenant) {
            return;
        }
        let mut workers = self.inner.workers.lock().expect("queue map poisoned");
        if !workers.contains_key(&key) {
            // Only if its worker died since the hand-over: a new one reads.
            self.inner.spawn(&mut workers, key);
        }
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

    /// Wakes the queues of one tenant that have undelivered entries (when
    /// this process takes the tenant over); returns how many.
    pub async fn recover_tenant(&self, tenant: &TenantId) -> Result<usize, BridgeError> {
        let queues = self.inner.store.pending_queues().await?;
        let mine: Vec<QueueKey> = queues.into_iter().filter(|(portal, _)| &portal.tenant == tenant).collect();
        let count = mine.len();
        for key in mine {
            self.wake(key);
        }
        Ok(count)
    }

    /// After this process stopped owning `tenant`: wakes its workers so they
    /// exit, and waits (at most `patience`) until the last delivery in
    /// flight has ended. True if they all exited.
    pub async fn drain_tenant(&self, tenant: &TenantId, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let remaining: Vec<Slot> = {
                let workers = self.inner.workers.lock().expect("queue map poisoned");
                workers.iter().filter(|((p, _), _)| &p.tenant == tenant).map(|(_, slot)| slot.clone()).collect()
            };
            if remaining.is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            for slot in remaining {
                slot.resync();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

impl Inner {
    fn owns(&self, tenant: &TenantId) -> bool {
        self.owners.owns(tenant)
    }

    /// Starts a worker (which first reads the store) and its completer.
    fn spawn(self: &Arc<Self>, workers: &mut HashMap<QueueKey, Slot>, key: QueueKey) -> Slot {
        let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let slot = Slot::new(id);
        workers.insert(key.clone(), slot.clone());
        let (done, completions) = mpsc::channel(IN_FLIGHT);
        tokio::spawn(complete_in_order(self.clone(), completions));
        let worker = Worker { inner: self.clone(), key, slot: slot.clone(), done, after: 0, buffer: VecDeque::new() };
        tokio::spawn(worker.run());
        slot
    }
}

impl CommitListener for Inner {
    fn committed(&self, entries: &[OutboxEntry], gap: bool) {
        if self.shutdown.is_cancelled() {
            return;
        }
        let mut workers = self.workers.lock().expect("queue map poisoned");
        if gap {
            // Entries stored elsewhere may precede these in any queue: all
            // read the store before trusting what they are handed next.
            for slot in workers.values() {
                slot.mark_resync();
            }
        }
        for entry in entries {
            let key = (entry.portal.clone(), entry.direction);
            match workers.get(&key) {
                Some(slot) => slot.hand(entry),
                // A new worker reads the store, which has the entry already.
                None if self.owns(&entry.portal.tenant) => {
                    if let Some(me) = self.me.upgrade() {
                        me.spawn(&mut workers, key);
                    }
                }
                // Another process owns the tenant and delivers it.
                None => {}
            }
        }
    }
}

struct Worker {
    inner: Arc<Inner>,
    key: QueueKey,
    slot: Slot,
    /// To the task that marks delivered entries done.
    done: mpsc::Sender<Done>,
    /// The seq of the last entry processed.
    after: i64,
    /// Handed entries taken from the inbox, in seq order.
    buffer: VecDeque<OutboxEntry>,
}

impl Worker {
    async fn run(mut self) {
        // A new worker knows nothing yet: the store first.
        let mut synced = false;
        let mut read_failures = 0;
        loop {
            if !self.inner.owns(&self.key.0.tenant) {
                return;
            }
            let (resync, handed) = self.take();
            if resync {
                synced = false;
            }
            self.buffer.extend(handed);
            if self.buffer.len() > INBOX_LIMIT {
                self.buffer.clear();
                synced = false;
            }
            if !synced {
                match self.read().await {
                    Ok(Some(in_sync)) => {
                        read_failures = 0;
                        synced = in_sync;
                        continue;
                    }
                    Ok(None) => return,
                    Err(err) => {
                        tracing::warn!(portal = %self.key.0, error = %err, "reading the outbox failed");
                        read_failures += 1;
                        if self.sleep(self.inner.policy.delay(read_failures, None)).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            // In sync: commits arrive in seq order, so the buffer holds the
            // next entries with nothing missing in between.
            while let Some(entry) = self.buffer.pop_front() {
                if entry.seq <= self.after {
                    continue;
                }
                if !self.process(&entry).await {
                    return;
                }
                self.after = entry.seq;
            }
            if self.idle().await {
                return;
            }
        }
    }

    /// Takes what the inbox holds: whether to read the store, and entries.
    fn take(&self) -> (bool, VecDeque<OutboxEntry>) {
        self.slot.take()
    }

    /// Reads and processes one batch from the store; `Some(true)` when it
    /// was short (the store had no more), `None` on shutdown. Handed entries
    /// the read covered are dropped from the buffer.
    async fn read(&mut self) -> Result<Option<bool>, BridgeError> {
        let (portal, direction) = &self.key;
        let limit = self.inner.policy.batch;
        let batch = self.inner.store.pending(portal, *direction, self.after, limit).await?;
        let short = batch.len() < limit as usize;
        for entry in batch {
            if !self.process(&entry).await {
                return Ok(None);
            }
            self.after = entry.seq;
        }
        let after = self.after;
        self.buffer.retain(|e| e.seq > after);
        Ok(Some(short))
    }

    /// Delivers one entry until it is done or dead-lettered; false on shutdown.
    async fn process(&self, entry: &OutboxEntry) -> bool {
        let store = &self.inner.store;
        let mut attempt = 0;
        loop {
            // A tenant taken over by another process: it delivers from here
            // on, so this worker stops before the next attempt.
            if self.inner.shutdown.is_cancelled() || !self.inner.owns(&entry.portal.tenant) {
                return false;
            }
            // A panicking delivery must not kill the worker and strand the queue.
            let outcome = AssertUnwindSafe(self.inner.deliver.deliver(entry)).catch_unwind().await;
            let outcome = outcome.unwrap_or_else(|_| Err(BridgeError::transient("delivery panicked")));
            let observer = self.inner.observer.get();
            match outcome {
                // The completer outlives the worker: it ends once `done` is dropped.
                Ok(mappings) => {
                    if let Some(observer) = observer {
                        observer.delivered(&entry.portal, entry.direction, waited(entry.stored_at));
                    }
                    return self.done.send((entry.seq, mappings)).await.is_ok();
                }
                Err(BridgeError::Transient { message, retry_after }) => {
                    if let Some(observer) = observer {
                        observer.failed(&entry.portal, entry.direction, false);
                    }
                    tracing::info!(portal = %self.key.0, seq = entry.seq, attempt, error = %message, "delivery failed; will retry");
                    let _ = store.record_failure(entry.seq, &message).await;
                    attempt += 1;
                    if self.sleep(self.inner.policy.delay(attempt, retry_after)).await {
                        return false;
                    }
                }
                Err(err) => {
                    if let Some(observer) = observer {
                        observer.failed(&entry.portal, entry.direction, true);
                    }
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

    /// Waits for a signal; exits (returning true) after the idle time or on shutdown.
    async fn idle(&mut self) -> bool {
        tokio::select! {
            _ = self.inner.shutdown.cancelled() => return true,
            _ = self.slot.signaled() => return false,
            _ = tokio::time::sleep(self.inner.policy.idle) => {}
        }
        let mut workers = self.inner.workers.lock().expect("queue map poisoned");
        // Signals are sent under this lock, so none can slip in between the
        // check and the removal.
        if self.slot.has_work() {
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
            && workers.get(&self.key).is_some_and(|slot| slot.id == self.slot.id)
        {
            workers.remove(&self.key);
        }
    }
}
