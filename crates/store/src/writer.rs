//! The group-commit writer: one task per store owns the only write
//! connection. It takes every request waiting in its channel, applies them in
//! one transaction, commits once and answers each caller. One durable commit
//! (one fsync) thus serves many callers, SQLite never sees two writers, and
//! outbox sequence numbers are handed out in commit order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brygga_core::{StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::batch;
use crate::codec::{db_err, now_ms};
use crate::feed::{Feed, FirstInsert, Subscribers};
use crate::ops::{Op, Reply, op_name};
use crate::options::Backend;

struct Request {
    op: Op,
    reply: oneshot::Sender<StoreResult<Reply>>,
}

/// Counters of the group-commit writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteStats {
    /// Write requests answered.
    pub requests: u64,
    /// Transactions committed (or attempted) for them.
    pub transactions: u64,
    /// Batches that failed as a whole and were retried one request at a time.
    pub split_batches: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    transactions: AtomicU64,
    split_batches: AtomicU64,
}

enum Msg {
    Write(Request),
    /// Stop after the writes already queued; answered once the connection
    /// is back in the pool.
    Close(oneshot::Sender<()>),
}

/// Handle to the writer task; the task ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    subscribers: Subscribers,
    announce: Announce,
}

/// The node this writer announces its commits as, once set (PostgreSQL).
type Announce = Arc<std::sync::OnceLock<String>>;

const STOPPED: &str = "the store's writer task has stopped (store closed?)";

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(pool: AnyPool, backend: Backend, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let counters = Arc::new(Counters::default());
        let subscribers = Subscribers::default();
        let feed = Feed::new(subscribers.clone());
        let announce = Announce::default();
        let max_batch = max_batch.max(1);
        let task =
            Task { pool, conn: None, backend, max_batch, counters: counters.clone(), feed, announce: announce.clone() };
        tokio::spawn(task.run(rx));
        Self { tx, counters, subscribers, announce }
    }

    /// Announces commits of outbox entries as `node` from now on; false if
    /// it already announces (under any name).
    pub fn announce_as(&self, node: &str) -> bool {
        self.announce.set(node.to_owned()).is_ok()
    }

    /// Where listeners for committed outbox entries register.
    pub fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }

    /// Sends one op and waits until its transaction committed.
    pub async fn submit(&self, op: Op) -> StoreResult<Reply> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Msg::Write(Request { op, reply })).await.map_err(|_| StoreError::Database(STOPPED.into()))?;
        answer.await.map_err(|_| StoreError::Database(STOPPED.into()))?
    }

    /// Commits what is queued, then stops the task and releases its
    /// connection. Later writes fail.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn stats(&self) -> WriteStats {
        WriteStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            split_batches: self.counters.split_batches.load(Ordering::Relaxed),
        }
    }
}

struct Task {
    pool: AnyPool,
    /// Held across batches: returning it to the pool after every batch
    /// would make the next batch wait for sqlx's release-time ping.
    conn: Option<PoolConnection<Any>>,
    backend: Backend,
    max_batch: usize,
    counters: Arc<Counters>,
    feed: Feed,
    announce: Announce,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut msgs = Vec::with_capacity(self.max_batch);
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut closers = Vec::new();
        // recv_many waits for the first message, then takes all that are
        // already queued: the batch is whatever arrived during the last commit.
        while rx.recv_many(&mut msgs, self.max_batch).await > 0 {
            for msg in msgs.drain(..) {
                match msg {
                    Msg::Write(request) => batch.push(request),
                    Msg::Close(done) => {
                        // Refuse new messages; the loop ends once the queue is empty.
                        rx.close();
                        closers.push(done);
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            let answers = self.commit_batch(&batch).await;
            self.counters.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (request, answer) in batch.drain(..).zip(answers) {
                // The caller may have given up waiting; the write stands.
                let _ = request.reply.send(answer);
            }
        }
        drop(self.conn.take());
        for done in closers {
            let _ = done.send(());
        }
    }

    /// Applies the batch in one transaction. If the database rejects it as
    /// a whole, retries each request in its own transaction so that only the
    /// request at fault gets the error.
    async fn commit_batch(&mut self, batch: &[Request]) -> Vec<StoreResult<Reply>> {
        self.counters.transactions.fetch_add(1, Ordering::Relaxed);
        let ops: Vec<&Op> = batch.iter().map(|r| &r.op).collect();
        match self.transaction(&ops).await {
            Ok(answers) => answers,
            // Alone in its transaction: the error is this request's own.
            Err(err) if batch.len() == 1 => vec![Err(db_err(op_name(ops[0]), err))],
            Err(err) => {
                self.counters.split_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    backend = self.backend.name(),
                    requests = batch.len(),
                    error = %db_err("group commit", err),
                    "group commit failed; retrying its requests one by one"
                );
                let mut answers = Vec::with_capacity(batch.len());
                for op in ops {
                    self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                    answers.push(match self.transaction(&[op]).await {
                        Ok(mut one) => one.pop().unwrap_or(Ok(Reply::Unit)),
                        Err(e) => Err(db_err(op_name(op), e)),
                    });
                }
                answers
            }
        }
    }

    /// Runs one transaction and, once it committed, publishes the outbox
    /// entries it inserted (before any caller is answered).
    async fn transaction(&mut self, ops: &[&Op]) -> Result<Vec<StoreResult<Reply>>, sqlx::Error> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.pool.acquire().await?),
        };
        let announce = self.announce.get().map(String::as_str);
        match transaction_on(conn, self.backend, ops, announce).await {
            Ok((answers, first)) => {
                self.feed.committed(ops, &answers, first);
                Ok(answers)
            }
            Err(err) => {
                // The connection may be broken; the pool tests it on release
                // and the next batch acquires a working one.
                self.conn = None;
                self.feed.lost_track();
                Err(err)
            }
        }
    }
}

/// The answers, and the first outbox row the transaction inserted.
async fn transaction_on(
    conn: &mut PoolConnection<Any>,
    backend: Backend,
    ops: &[&Op],
    announce: Option<&str>,
) -> Result<(Vec<StoreResult<Reply>>, FirstInsert), sqlx::Error> {
    let mut tx = match backend {
        // IMMEDIATE takes the write lock up front, so a second process on
        // the same file waits (busy_timeout) instead of failing mid-way.
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => conn.begin().await?,
    };
    if backend == Backend::Postgres && ops.iter().any(|op| op.assigns_seq()) {
        // Several processes may share one database: the lock makes seq
        // order equal commit order across them too.
        sqlx::query("SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(4242001)) AS l")
            .fetch_one(&mut *tx)
            .await?;
    }
    let mut first = FirstInsert::default();
    let answers = batch::apply_all(&mut tx, backend, ops, now_ms(), &mut first).await?;
    if let Some(node) = announce.filter(|_| backend == Backend::Postgres) {
        crate::announce::send(&mut tx, crate::announce::payloads(node, ops)).await?;
    }
    tx.commit().await?;
    Ok((answers, first))
}
