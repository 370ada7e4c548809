//! The group-commit writer: one task per store owns the only write
//! connection. It takes every request waiting in its channel, applies them in
//! one transaction, commits once and answers each caller. One durable commit
//! (one fsync) thus serves many callers, SQLite never sees two writers, and
//! outbox sequence numbers are handed out in commit order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brygga_core::{
    AdapterKind, MatrixUserId, MessageMapping, NewOutboxEntry, StoreError, StoreResult, TenantId, TxnOutcome,
};
use sqlx::{AnyConnection, AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{db_err, now_ms};
use crate::connect::Backend;
use crate::{batch, write_entities, write_outbox};

/// A tenant row ready to store (settings already serialized).
pub(crate) struct TenantRow {
    pub id: String,
    pub display_name: String,
    pub settings: String,
    pub suspended: bool,
}

/// One write request.
pub(crate) enum Op {
    UpsertTenant(TenantRow),
    RemoveTenant(TenantId),
    PutAdapterConfig {
        tenant: TenantId,
        kind: AdapterKind,
        enabled: bool,
        config: String,
    },
    SetAdapterEnabled {
        tenant: TenantId,
        kind: AdapterKind,
        enabled: bool,
    },
    UpsertGhost(brygga_core::Ghost),
    LinkAccount(brygga_core::LinkedAccount),
    UnlinkAccount {
        tenant: TenantId,
        kind: AdapterKind,
        user: MatrixUserId,
    },
    UpsertPortal(brygga_core::Portal),
    Enqueue(NewOutboxEntry),
    Ingest {
        txn_id: String,
        entries: Vec<NewOutboxEntry>,
    },
    Complete {
        seq: i64,
        mappings: Vec<MessageMapping>,
    },
    RecordFailure {
        seq: i64,
        error: String,
    },
    DeadLetter {
        seq: i64,
        error: String,
    },
    /// Runs raw SQL; lets unit tests make one request of a batch fail.
    #[cfg(test)]
    Raw(&'static str),
}

impl Op {
    /// Whether the op inserts outbox rows (and so needs seq ordering).
    fn assigns_seq(&self) -> bool {
        matches!(self, Op::Enqueue(_) | Op::Ingest { .. })
    }
}

/// The answer to one write request.
#[derive(Debug)]
pub(crate) enum Reply {
    Unit,
    Flag(bool),
    Seq(Option<i64>),
    Txn(TxnOutcome),
}

/// What applying one op produced: the outer error aborts the transaction,
/// the inner one is the caller's answer (nothing was written for it).
pub(crate) type Applied = Result<StoreResult<Reply>, sqlx::Error>;

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

/// Handle to the writer task; the task ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Request>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(pool: AnyPool, backend: Backend, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let counters = Arc::new(Counters::default());
        let task = Task {
            pool,
            backend,
            max_batch: max_batch.max(1),
            counters: counters.clone(),
        };
        tokio::spawn(task.run(rx));
        Self { tx, counters }
    }

    /// Sends one op and waits until its transaction committed.
    pub async fn submit(&self, op: Op) -> StoreResult<Reply> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { op, reply })
            .await
            .map_err(|_| StoreError::Database("the store's writer task has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Database("the store's writer task stopped before answering".into()))?
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
    backend: Backend,
    max_batch: usize,
    counters: Arc<Counters>,
}

impl Task {
    async fn run(self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        // recv_many waits for the first request, then takes all that are
        // already queued: the batch is whatever arrived during the last commit.
        while rx.recv_many(&mut batch, self.max_batch).await > 0 {
            let answers = self.commit_batch(&batch).await;
            self.counters.requests.fetch_add(batch.len() as u64, Ordering::Relaxed);
            for (request, answer) in batch.drain(..).zip(answers) {
                // The caller may have given up waiting; the write stands.
                let _ = request.reply.send(answer);
            }
        }
    }

    /// Applies the batch in one transaction. If the database rejects it as
    /// a whole, retries each request in its own transaction so that only the
    /// request at fault gets the error.
    async fn commit_batch(&self, batch: &[Request]) -> Vec<StoreResult<Reply>> {
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

    async fn transaction(&self, ops: &[&Op]) -> Result<Vec<StoreResult<Reply>>, sqlx::Error> {
        let mut tx: Transaction<'static, sqlx::Any> = match self.backend {
            // IMMEDIATE takes the write lock up front, so a second process on
            // the same file waits (busy_timeout) instead of failing mid-way.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        if self.backend == Backend::Postgres && ops.iter().any(|op| op.assigns_seq()) {
            // Several processes may share one database: the lock makes seq
            // order equal commit order across them too.
            sqlx::query("SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(4242001)) AS l")
                .fetch_one(&mut *tx)
                .await?;
        }
        let now = now_ms();
        let answers = batch::apply_all(&mut tx, self.backend, ops, now).await?;
        tx.commit().await?;
        Ok(answers)
    }
}

/// Applies one op on its own (the batch module coalesces the common ones).
pub(crate) async fn apply(conn: &mut AnyConnection, backend: Backend, op: &Op, now: i64) -> Applied {
    match op {
        Op::UpsertTenant(row) => write_entities::upsert_tenant(conn, row, now).await,
        Op::RemoveTenant(id) => write_entities::remove_tenant(conn, id).await,
        Op::PutAdapterConfig {
            tenant,
            kind,
            enabled,
            config,
        } => write_entities::put_adapter_config(conn, tenant, kind, *enabled, config, now).await,
        Op::SetAdapterEnabled { tenant, kind, enabled } => {
            write_entities::set_adapter_enabled(conn, tenant, kind, *enabled, now).await
        }
        Op::UpsertGhost(ghost) => write_entities::upsert_ghost(conn, ghost, now).await,
        Op::LinkAccount(account) => write_entities::link_account(conn, account, now).await,
        Op::UnlinkAccount { tenant, kind, user } => write_entities::unlink_account(conn, tenant, kind, user).await,
        Op::UpsertPortal(portal) => write_entities::upsert_portal(conn, portal, now).await,
        Op::Enqueue(entry) => {
            let mut seqs = write_outbox::enqueue_many(conn, backend, &[entry], now).await?;
            Ok(Ok(Reply::Seq(seqs.pop().flatten())))
        }
        Op::Ingest { txn_id, entries } => write_outbox::ingest(conn, backend, txn_id, entries, now).await,
        Op::Complete { seq, mappings } => {
            let mut answers = write_outbox::complete_many(conn, backend, &[(*seq, mappings)], now).await?;
            Ok(answers.pop().unwrap_or(Ok(Reply::Unit)))
        }
        Op::RecordFailure { seq, error } => write_outbox::record_failure(conn, *seq, error, now).await,
        Op::DeadLetter { seq, error } => write_outbox::dead_letter(conn, *seq, error, now).await,
        #[cfg(test)]
        Op::Raw(sql) => sqlx::query(*sql).execute(conn).await.map(|_| Ok(Reply::Unit)),
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::UpsertTenant(_) => "upsert tenant",
        Op::RemoveTenant(_) => "remove tenant",
        Op::PutAdapterConfig { .. } => "put adapter config",
        Op::SetAdapterEnabled { .. } => "set adapter enabled",
        Op::UpsertGhost(_) => "upsert ghost",
        Op::LinkAccount(_) => "link account",
        Op::UnlinkAccount { .. } => "unlink account",
        Op::UpsertPortal(_) => "upsert portal",
        Op::Enqueue(_) => "enqueue",
        Op::Ingest { .. } => "ingest transaction",
        Op::Complete { .. } => "complete",
        Op::RecordFailure { .. } => "record failure",
        Op::DeadLetter { .. } => "dead letter",
        #[cfg(test)]
        Op::Raw(_) => "raw test statement",
    }
}
