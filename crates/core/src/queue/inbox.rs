//! What the queue set sends a running worker: entries handed over from
//! commits, and whether it must read the store before trusting them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::store::OutboxEntry;

/// Most handed-over entries a queue holds in memory; beyond that it drops
/// them and reads the store instead. As many as one default store read
/// fetches: when every portal stalls at once (the homeserver is down), the
/// queues hold no more than they would by reading.
pub(super) const INBOX_LIMIT: usize = 128;

/// Locked under the worker map's lock when both are needed, never the
/// other way round.
#[derive(Default)]
struct Inbox {
    /// Entries of commits, in seq order.
    entries: VecDeque<OutboxEntry>,
    /// The worker must read the store before trusting handed entries.
    resync: bool,
}

/// A running worker as the worker map knows it.
#[derive(Clone)]
pub(super) struct Slot {
    pub(super) id: u64,
    inbox: Arc<Mutex<Inbox>>,
    signal: Arc<Notify>,
}

impl Slot {
    pub(super) fn new(id: u64) -> Self {
        Self { id, inbox: Arc::default(), signal: Arc::new(Notify::new()) }
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().expect("queue inbox poisoned")
    }

    /// Tells the worker to read the store, now.
    pub(super) fn resync(&self) {
        self.mark_resync();
        self.signal.notify_one();
    }

    /// Tells the worker to read the store before it next trusts the inbox,
    /// without waking it for that alone.
    pub(super) fn mark_resync(&self) {
        self.inbox().resync = true;
    }

    /// Hands over one committed entry (commits must come in seq order).
    pub(super) fn hand(&self, entry: &OutboxEntry) {
        let mut inbox = self.inbox();
        if inbox.entries.len() >= INBOX_LIMIT {
            inbox.entries.clear();
            inbox.resync = true;
        } else {
            inbox.entries.push_back(entry.clone());
        }
        drop(inbox);
        self.signal.notify_one();
    }

    /// Empties the inbox: whether to read the store first, and the entries.
    pub(super) fn take(&self) -> (bool, VecDeque<OutboxEntry>) {
        let mut inbox = self.inbox();
        (std::mem::take(&mut inbox.resync), std::mem::take(&mut inbox.entries))
    }

    /// Whether anything waits in the inbox.
    pub(super) fn has_work(&self) -> bool {
        let inbox = self.inbox();
        inbox.resync || !inbox.entries.is_empty()
    }

    /// Completes at the next signal (or at once if one came meanwhile).
    pub(super) async fn signaled(&self) {
        self.signal.notified().await;
    }
}
