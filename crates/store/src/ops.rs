//! The write requests the writer task applies, and how one is applied on
//! its own (the batch module coalesces the frequent ones).

use brygga_core::{AdapterKind, MatrixUserId, MessageMapping, NewOutboxEntry, StoreResult, TenantId, TxnOutcome};
use sqlx::AnyConnection;

use crate::feed::FirstInsert;
use crate::options::Backend;
use crate::{write_complete, write_entities, write_outbox};

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
    PutAdminToken(brygga_core::AdminToken),
    RemoveAdminToken {
        tenant: TenantId,
        id: String,
    },
    UpsertGhost(brygga_core::Ghost),
    LinkAccount(brygga_core::LinkedAccount),
    UnlinkAccount {
        tenant: TenantId,
        kind: AdapterKind,
        user: MatrixUserId,
    },
    PutManagementRoom {
        room: brygga_core::MatrixRoomId,
        user: MatrixUserId,
    },
    RemoveManagementRoom(brygga_core::MatrixRoomId),
    UpsertPortal(brygga_core::Portal),
    RemovePortal(brygga_core::PortalKey),
    PutState {
        tenant: TenantId,
        kind: AdapterKind,
        key: String,
        value: Option<String>,
    },
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
    pub(crate) fn assigns_seq(&self) -> bool {
        matches!(self, Op::Enqueue(_) | Op::Ingest { .. })
    }
}

/// The answer to one write request.
#[derive(Debug)]
pub(crate) enum Reply {
    Unit,
    Flag(bool),
    Seq(Option<i64>),
    /// The outcome and, for a new transaction, the seq of each entry.
    Txn(TxnOutcome, Vec<Option<i64>>),
}

/// What applying one op produced: the outer error aborts the transaction,
/// the inner one is the caller's answer (nothing was written for it).
pub(crate) type Applied = Result<StoreResult<Reply>, sqlx::Error>;

/// Applies one op on its own; inserted outbox rows are noted in `first`.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    backend: Backend,
    op: &Op,
    now: i64,
    first: &mut FirstInsert,
) -> Applied {
    match op {
        Op::UpsertTenant(row) => write_entities::upsert_tenant(conn, row, now).await,
        Op::RemoveTenant(id) => write_entities::remove_tenant(conn, id).await,
        Op::PutAdapterConfig { tenant, kind, enabled, config } => {
            write_entities::put_adapter_config(conn, tenant, kind, *enabled, config, now).await
        }
        Op::SetAdapterEnabled { tenant, kind, enabled } => {
            write_entities::set_adapter_enabled(conn, tenant, kind, *enabled, now).await
        }
        Op::PutAdminToken(token) => write_entities::put_admin_token(conn, token).await,
        Op::RemoveAdminToken { tenant, id } => write_entities::remove_admin_token(conn, tenant, id).await,
        Op::UpsertGhost(ghost) => write_entities::upsert_ghost(conn, ghost, now).await,
        Op::LinkAccount(account) => write_entities::link_account(conn, account, now).await,
        Op::UnlinkAccount { tenant, kind, user } => write_entities::unlink_account(conn, tenant, kind, user).await,
        Op::PutManagementRoom { room, user } => crate::management::put(conn, room, user, now).await,
        Op::RemoveManagementRoom(room) => crate::management::remove(conn, room).await,
        Op::UpsertPortal(portal) => write_entities::upsert_portal(conn, portal, now).await,
        Op::RemovePortal(key) => write_entities::remove_portal(conn, key).await,
        Op::PutState { tenant, kind, key, value } => {
            write_entities::put_state(conn, tenant, kind, key, value.as_deref(), now).await
        }
        Op::Enqueue(entry) => {
            let mut seqs = write_outbox::enqueue_many(conn, backend, &[entry], now, first).await?;
            Ok(Ok(Reply::Seq(seqs.pop().flatten())))
        }
        Op::Ingest { txn_id, entries } => write_outbox::ingest(conn, backend, txn_id, entries, now, first).await,
        Op::Complete { seq, mappings } => {
            let mut answers = write_complete::complete_many(conn, backend, &[(*seq, mappings)], now).await?;
            Ok(answers.pop().unwrap_or(Ok(Reply::Unit)))
        }
        Op::RecordFailure { seq, error } => write_outbox::record_failure(conn, *seq, error, now).await,
        Op::DeadLetter { seq, error } => write_outbox::dead_letter(conn, *seq, error, now).await,
        #[cfg(test)]
        Op::Raw(sql) => sqlx::query(*sql).execute(conn).await.map(|_| Ok(Reply::Unit)),
    }
}

pub(crate) fn op_name(op: &Op) -> &'static str {
    match op {
        Op::UpsertTenant(_) => "upsert tenant",
        Op::RemoveTenant(_) => "remove tenant",
        Op::PutAdapterConfig { .. } => "put adapter config",
        Op::SetAdapterEnabled { .. } => "set adapter enabled",
        Op::PutAdminToken(_) => "put admin token",
        Op::RemoveAdminToken { .. } => "remove admin token",
        Op::UpsertGhost(_) => "upsert ghost",
        Op::LinkAccount(_) => "link account",
        Op::UnlinkAccount { .. } => "unlink account",
        Op::PutManagementRoom { .. } => "put management room",
        Op::RemoveManagementRoom(_) => "remove management room",
        Op::UpsertPortal(_) => "upsert portal",
        Op::RemovePortal(_) => "remove portal",
        Op::PutState { .. } => "put adapter state",
        Op::Enqueue(_) => "enqueue",
        Op::Ingest { .. } => "ingest transaction",
        Op::Complete { .. } => "complete",
        Op::RecordFailure { .. } => "record failure",
        Op::DeadLetter { .. } => "dead letter",
        #[cfg(test)]
        Op::Raw(_) => "raw test statement",
    }
}
