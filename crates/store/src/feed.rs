//! Hands the outbox entries of each commit to the registered listeners (the
//! queues), so a queue need not read back what this process just wrote.
//!
//! The feed also tells listeners when it cannot vouch for being complete.
//! Each inserted outbox row reports the highest seq below it, read under the
//! write order (SQLite's write lock, the PostgreSQL advisory lock). If that
//! is not, for the first row of a commit, the top this writer left after its
//! previous insert, someone else stored rows in between (another process or
//! store on the same database, or a commit whose outcome was lost), and the
//! commit is published with `gap` set.

use std::sync::{Arc, Mutex, Weak};

use brygga_core::store::CommitListener;
use brygga_core::{OutboxEntry, StoreResult, TxnOutcome};

use crate::ops::{Op, Reply};

type Listeners = Mutex<Vec<Weak<dyn CommitListener>>>;

/// Registration side, shared with the store handle.
#[derive(Clone, Default)]
pub(crate) struct Subscribers(Arc<Listeners>);

impl Subscribers {
    pub(crate) fn add(&self, listener: Weak<dyn CommitListener>) {
        let mut listeners = self.0.lock().expect("listener list poisoned");
        listeners.retain(|l| l.strong_count() > 0);
        listeners.push(listener);
    }
}

/// The lowest seq a transaction inserted, and the highest seq below it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FirstInsert(Option<(i64, i64)>);

impl FirstInsert {
    /// Notes an inserted row and the highest seq below it.
    pub(crate) fn note(&mut self, seq: i64, prev: i64) {
        if self.0.is_none_or(|(first, _)| seq < first) {
            self.0 = Some((seq, prev));
        }
    }
}

/// Publishing side, owned by the writer task.
pub(crate) struct Feed {
    subscribers: Subscribers,
    /// The highest outbox seq after this writer's last inserting commit;
    /// `None` when unknown (at start, or after a failed transaction).
    known_top: Option<i64>,
}

impl Feed {
    pub(crate) fn new(subscribers: Subscribers) -> Self {
        Self { subscribers, known_top: None }
    }

    /// A transaction failed: it may or may not have committed.
    pub(crate) fn lost_track(&mut self) {
        self.known_top = None;
    }

    /// Publishes what a committed transaction inserted. A transaction that
    /// inserted nothing changes nothing: a row stored elsewhere meanwhile
    /// shows up as a gap at the next insert.
    pub(crate) fn committed(&mut self, ops: &[&Op], answers: &[StoreResult<Reply>], first: FirstInsert) {
        let Some((_, top_before)) = first.0 else { return };
        let gap = self.known_top != Some(top_before);
        let listeners: Vec<Arc<dyn CommitListener>> =
            self.subscribers.0.lock().expect("listener list poisoned").iter().filter_map(Weak::upgrade).collect();
        let mut entries = Vec::new();
        let mut top = top_before;
        for (op, answer) in ops.iter().zip(answers) {
            top = top.max(seqs(answer).flatten().max().unwrap_or(top));
            if !listeners.is_empty() {
                collect(op, answer, &mut entries);
            }
        }
        self.known_top = Some(top);
        if listeners.is_empty() || (entries.is_empty() && !gap) {
            return;
        }
        entries.sort_unstable_by_key(|e| e.seq);
        for listener in listeners {
            listener.committed(&entries, gap);
        }
    }
}

/// The seqs an answer hands out.
fn seqs(answer: &StoreResult<Reply>) -> impl Iterator<Item = Option<i64>> + '_ {
    let seqs: &[Option<i64>] = match answer {
        Ok(Reply::Seq(seq)) => std::slice::from_ref(seq),
        Ok(Reply::Txn(_, seqs)) => seqs,
        _ => &[],
    };
    seqs.iter().copied()
}

/// The stored entries of one answered op.
fn collect(op: &Op, answer: &StoreResult<Reply>, out: &mut Vec<OutboxEntry>) {
    match (op, answer) {
        (Op::Enqueue(e), Ok(Reply::Seq(Some(seq)))) => {
            let entry =
                OutboxEntry::new(*seq, e.direction, e.portal.clone(), e.dedupe_key.clone(), e.payload.clone(), 0);
            out.push(entry.stored(crate::codec::now_ms()));
        }
        (Op::Ingest { entries, .. }, Ok(Reply::Txn(TxnOutcome::New, seqs))) => {
            for (e, seq) in entries.iter().zip(seqs) {
                if let Some(seq) = seq {
                    let entry = OutboxEntry::new(
                        *seq,
                        e.direction,
                        e.portal.clone(),
                        e.dedupe_key.clone(),
                        e.payload.clone(),
                        0,
                    );
                    out.push(entry.stored(crate::codec::now_ms()));
                }
            }
        }
        _ => {}
    }
}
