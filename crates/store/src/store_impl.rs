//! `brygga_core::Store` for `SqlStore`: reads go to the pool, writes to the
//! group-commit writer.

use std::sync::Weak;

use async_trait::async_trait;
use brygga_core::store::CommitListener;
use brygga_core::{
    AdapterConfig, AdapterCounts, AdapterKind, AdminToken, Direction, Ghost, LinkedAccount, MatrixEventId,
    MatrixRoomId, MatrixUserId, MessageMapping, NewOutboxEntry, OutboxEntry, Portal, PortalKey, RemoteMessageId,
    RemoteUserId, Store, StoreError, StoreResult, Tenant, TenantId, TxnOutcome,
};

use crate::SqlStore;
use crate::ops::{Op, Reply, TenantRow};
use crate::reads;

fn unexpected(reply: Reply) -> StoreError {
    StoreError::Database(format!("internal error: unexpected writer reply {reply:?}"))
}

impl SqlStore {
    async fn write_unit(&self, op: Op) -> StoreResult<()> {
        match self.writer().submit(op).await? {
            Reply::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn write_flag(&self, op: Op) -> StoreResult<bool> {
        match self.writer().submit(op).await? {
            Reply::Flag(flag) => Ok(flag),
            other => Err(unexpected(other)),
        }
    }

    #[cfg(test)]
    pub(crate) async fn write_raw_for_test(&self, sql: &'static str) -> StoreResult<()> {
        self.write_unit(Op::Raw(sql)).await
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn upsert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let settings = serde_json::to_string(&tenant.settings)
            .map_err(|e| StoreError::Corrupt(format!("tenant {}: settings do not serialize: {e}", tenant.id)))?;
        self.write_unit(Op::UpsertTenant(TenantRow {
            id: tenant.id.to_string(),
            display_name: tenant.display_name.clone(),
            settings,
            suspended: tenant.suspended,
        }))
        .await
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        reads::tenant(self.read_pool(), id).await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        reads::tenants(self.read_pool()).await
    }

    async fn remove_tenant(&self, id: &TenantId) -> StoreResult<bool> {
        self.write_flag(Op::RemoveTenant(id.clone())).await
    }

    async fn put_adapter_config(&self, config: &AdapterConfig) -> StoreResult<()> {
        // The message never quotes the config: it holds credentials.
        let json = serde_json::to_string(&config.config).map_err(|_| {
            StoreError::Corrupt(format!("adapter config {}/{} does not serialize", config.tenant, config.kind))
        })?;
        self.write_unit(Op::PutAdapterConfig {
            tenant: config.tenant.clone(),
            kind: config.kind.clone(),
            enabled: config.enabled,
            config: json,
        })
        .await
    }

    async fn adapter_config(&self, tenant: &TenantId, kind: &AdapterKind) -> StoreResult<Option<AdapterConfig>> {
        reads::adapter_config(self.read_pool(), tenant, kind).await
    }

    async fn adapter_configs(&self, tenant: Option<&TenantId>) -> StoreResult<Vec<AdapterConfig>> {
        reads::adapter_configs(self.read_pool(), tenant).await
    }

    async fn set_adapter_enabled(&self, tenant: &TenantId, kind: &AdapterKind, enabled: bool) -> StoreResult<bool> {
        self.write_flag(Op::SetAdapterEnabled { tenant: tenant.clone(), kind: kind.clone(), enabled }).await
    }

    async fn upsert_ghost(&self, ghost: &Ghost) -> StoreResult<()> {
        self.write_unit(Op::UpsertGhost(ghost.clone())).await
    }

    async fn ghost(&self, tenant: &TenantId, kind: &AdapterKind, remote: &RemoteUserId) -> StoreResult<Option<Ghost>> {
        reads::ghost(self.read_pool(), tenant, kind, remote).await
    }

    async fn ghost_by_user_id(&self, user_id: &MatrixUserId) -> StoreResult<Option<Ghost>> {
        reads::ghost_by_user_id(self.read_pool(), user_id).await
    }

    async fn put_admin_token(&self, token: &AdminToken) -> StoreResult<()> {
        self.write_unit(Op::PutAdminToken(token.clone())).await
    }

    async fn admin_token_by_hash(&self, hash: &str) -> StoreResult<Option<AdminToken>> {
        reads::admin_token_by_hash(self.read_pool(), hash).await
    }

    async fn admin_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<AdminToken>> {
        reads::admin_tokens(self.read_pool(), tenant).await
    }

    async fn remove_admin_token(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        self.write_flag(Op::RemoveAdminToken { tenant: tenant.clone(), id: id.to_owned() }).await
    }

    async fn counts(&self) -> StoreResult<Vec<((TenantId, AdapterKind), AdapterCounts)>> {
        reads::counts(self.read_pool()).await
    }

    async fn ghosts(&self, tenant: &TenantId, search: Option<&str>, limit: u32) -> StoreResult<Vec<Ghost>> {
        reads::ghosts(self.read_pool(), tenant, search, limit).await
    }

    async fn remove_portal(&self, key: &PortalKey) -> StoreResult<bool> {
        self.write_flag(Op::RemovePortal(key.clone())).await
    }

    async fn link_account(&self, account: &LinkedAccount) -> StoreResult<()> {
        self.write_unit(Op::LinkAccount(account.clone())).await
    }

    async fn linked_accounts(&self, tenant: &TenantId, user: &MatrixUserId) -> StoreResult<Vec<LinkedAccount>> {
        reads::linked_accounts(self.read_pool(), tenant, user).await
    }

    async fn unlink_account(&self, tenant: &TenantId, kind: &AdapterKind, user: &MatrixUserId) -> StoreResult<bool> {
        self.write_flag(Op::UnlinkAccount { tenant: tenant.clone(), kind: kind.clone(), user: user.clone() }).await
    }

    async fn upsert_portal(&self, portal: &Portal) -> StoreResult<()> {
        self.write_unit(Op::UpsertPortal(portal.clone())).await
    }

    async fn portal(&self, key: &PortalKey) -> StoreResult<Option<Portal>> {
        reads::portal(self.read_pool(), key).await
    }

    async fn adapter_state(&self, tenant: &TenantId, kind: &AdapterKind, key: &str) -> StoreResult<Option<String>> {
        reads::state(self.read_pool(), tenant, kind, key).await
    }

    async fn put_adapter_state(
        &self,
        tenant: &TenantId,
        kind: &AdapterKind,
        key: &str,
        value: Option<&str>,
    ) -> StoreResult<()> {
        let op = Op::PutState {
            tenant: tenant.clone(),
            kind: kind.clone(),
            key: key.to_owned(),
            value: value.map(str::to_owned),
        };
        self.write_unit(op).await
    }

    async fn put_management_room(&self, room: &MatrixRoomId, user: &MatrixUserId) -> StoreResult<()> {
        self.write_unit(Op::PutManagementRoom { room: room.clone(), user: user.clone() }).await
    }

    async fn management_room(&self, room: &MatrixRoomId) -> StoreResult<Option<MatrixUserId>> {
        crate::management::get(self.read_pool(), room).await
    }

    async fn remove_management_room(&self, room: &MatrixRoomId) -> StoreResult<bool> {
        self.write_flag(Op::RemoveManagementRoom(room.clone())).await
    }

    async fn portal_by_room(&self, room: &MatrixRoomId) -> StoreResult<Option<Portal>> {
        reads::portal_by_room(self.read_pool(), room).await
    }

    async fn portals(&self, tenant: &TenantId) -> StoreResult<Vec<Portal>> {
        reads::portals(self.read_pool(), tenant).await
    }

    async fn messages_by_remote(
        &self,
        portal: &PortalKey,
        remote: &RemoteMessageId,
    ) -> StoreResult<Vec<MessageMapping>> {
        reads::messages_by_remote(self.read_pool(), portal, remote).await
    }

    async fn messages_by_matrix(&self, tenant: &TenantId, event: &MatrixEventId) -> StoreResult<Vec<MessageMapping>> {
        reads::messages_by_matrix(self.read_pool(), tenant, event).await
    }

    async fn enqueue(&self, entry: NewOutboxEntry) -> StoreResult<Option<i64>> {
        match self.writer().submit(Op::Enqueue(entry)).await? {
            Reply::Seq(seq) => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    async fn ingest_transaction(&self, txn_id: &str, entries: Vec<NewOutboxEntry>) -> StoreResult<TxnOutcome> {
        let op = Op::Ingest { txn_id: txn_id.to_owned(), entries };
        match self.writer().submit(op).await? {
            Reply::Txn(outcome, _) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    async fn pending_queues(&self) -> StoreResult<Vec<(PortalKey, Direction)>> {
        reads::pending_queues(self.read_pool()).await
    }

    async fn pending(
        &self,
        portal: &PortalKey,
        direction: Direction,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEntry>> {
        reads::pending(self.read_pool(), portal, direction, after, limit).await
    }

    async fn complete(&self, seq: i64, mappings: Vec<MessageMapping>) -> StoreResult<()> {
        self.write_unit(Op::Complete { seq, mappings }).await
    }

    async fn record_failure(&self, seq: i64, error: &str) -> StoreResult<()> {
        self.write_unit(Op::RecordFailure { seq, error: error.to_owned() }).await
    }

    async fn dead_letter(&self, seq: i64, error: &str) -> StoreResult<()> {
        self.write_unit(Op::DeadLetter { seq, error: error.to_owned() }).await
    }

    fn watch_commits(&self, listener: Weak<dyn CommitListener>) -> bool {
        self.writer().subscribers().add(listener);
        true
    }
}
