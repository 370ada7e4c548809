//! Opt-in instrumentation (`--instrument`): wrappers around the real store
//! and Matrix client that count calls and their time, as seen by the router.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use brygga_core::store::CommitListener;
use brygga_core::{
    AdapterConfig, AdapterKind, AdminToken, BridgeError, Direction, EventBody, Ghost, GhostProfile, LinkedAccount,
    MatrixEventId, MatrixFile, MatrixRoomId, MatrixSide, MatrixUserId, MediaBytes, MessageMapping, NewOutboxEntry,
    OutboxEntry, Portal, PortalKey, RemoteMessageId, RemoteUserId, RoomSpec, Store, StoreResult, Tenant, TenantId,
    TxnOutcome,
};

/// Calls, total and longest time per operation name.
#[derive(Default)]
pub struct Timings {
    ops: Mutex<BTreeMap<&'static str, (u64, Duration, Duration)>>,
}

impl Timings {
    async fn time<T>(&self, name: &'static str, fut: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = fut.await;
        let took = start.elapsed();
        let mut ops = self.ops.lock().expect("timings poisoned");
        let entry = ops.entry(name).or_default();
        *entry = (entry.0 + 1, entry.1 + took, entry.2.max(took));
        out
    }

    /// Forgets everything recorded so far.
    pub fn reset(&self) {
        self.ops.lock().expect("timings poisoned").clear();
    }

    /// One line per operation, busiest (by total time) first.
    pub fn lines(&self) -> Vec<String> {
        let mut ops: Vec<_> = self.ops.lock().expect("timings poisoned").clone().into_iter().collect();
        ops.sort_by_key(|(_, (_, total, _))| std::cmp::Reverse(*total));
        ops.into_iter()
            .map(|(name, (calls, total, max))| {
                let mean_us = total.as_secs_f64() * 1e6 / calls.max(1) as f64;
                format!(
                    "{name}: calls={calls} total_ms={:.0} mean_us={mean_us:.0} max_ms={:.1}",
                    total.as_secs_f64() * 1e3,
                    max.as_secs_f64() * 1e3
                )
            })
            .collect()
    }
}

/// A [`Store`] that times every call of the store it wraps.
pub struct TimedStore {
    /// The wrapped store.
    pub inner: Arc<dyn Store>,
    /// Where the times go.
    pub timings: Arc<Timings>,
}

#[async_trait]
impl Store for TimedStore {
    async fn upsert_tenant(&self, t: &Tenant) -> StoreResult<()> {
        self.timings.time("store.upsert_tenant", self.inner.upsert_tenant(t)).await
    }
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.timings.time("store.tenant", self.inner.tenant(id)).await
    }
    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.timings.time("store.tenants", self.inner.tenants()).await
    }
    async fn remove_tenant(&self, id: &TenantId) -> StoreResult<bool> {
        self.timings.time("store.remove_tenant", self.inner.remove_tenant(id)).await
    }
    async fn put_adapter_config(&self, c: &AdapterConfig) -> StoreResult<()> {
        self.timings.time("store.put_adapter_config", self.inner.put_adapter_config(c)).await
    }
    async fn adapter_config(&self, t: &TenantId, k: &AdapterKind) -> StoreResult<Option<AdapterConfig>> {
        self.timings.time("store.adapter_config", self.inner.adapter_config(t, k)).await
    }
    async fn adapter_configs(&self, t: Option<&TenantId>) -> StoreResult<Vec<AdapterConfig>> {
        self.timings.time("store.adapter_configs", self.inner.adapter_configs(t)).await
    }
    async fn set_adapter_enabled(&self, t: &TenantId, k: &AdapterKind, on: bool) -> StoreResult<bool> {
        self.timings.time("store.set_adapter_enabled", self.inner.set_adapter_enabled(t, k, on)).await
    }
    async fn put_admin_token(&self, t: &AdminToken) -> StoreResult<()> {
        self.inner.put_admin_token(t).await
    }
    async fn admin_token_by_hash(&self, h: &str) -> StoreResult<Option<AdminToken>> {
        self.inner.admin_token_by_hash(h).await
    }
    async fn admin_tokens(&self, t: &TenantId) -> StoreResult<Vec<AdminToken>> {
        self.inner.admin_tokens(t).await
    }
    async fn remove_admin_token(&self, t: &TenantId, id: &str) -> StoreResult<bool> {
        self.inner.remove_admin_token(t, id).await
    }
    async fn counts(&self) -> StoreResult<Vec<((TenantId, AdapterKind), brygga_core::AdapterCounts)>> {
        self.inner.counts().await
    }
    async fn ghosts(&self, t: &TenantId, s: Option<&str>, n: u32) -> StoreResult<Vec<Ghost>> {
        self.inner.ghosts(t, s, n).await
    }
    async fn remove_portal(&self, k: &PortalKey) -> StoreResult<bool> {
        self.inner.remove_portal(k).await
    }
    async fn upsert_ghost(&self, g: &Ghost) -> StoreResult<()> {
        self.timings.time("store.upsert_ghost", self.inner.upsert_ghost(g)).await
    }
    async fn ghost(&self, t: &TenantId, k: &AdapterKind, r: &RemoteUserId) -> StoreResult<Option<Ghost>> {
        self.timings.time("store.ghost", self.inner.ghost(t, k, r)).await
    }
    async fn ghost_by_user_id(&self, u: &MatrixUserId) -> StoreResult<Option<Ghost>> {
        self.timings.time("store.ghost_by_user_id", self.inner.ghost_by_user_id(u)).await
    }
    async fn link_account(&self, a: &LinkedAccount) -> StoreResult<()> {
        self.timings.time("store.link_account", self.inner.link_account(a)).await
    }
    async fn linked_accounts(&self, t: &TenantId, u: &MatrixUserId) -> StoreResult<Vec<LinkedAccount>> {
        self.timings.time("store.linked_accounts", self.inner.linked_accounts(t, u)).await
    }
    async fn unlink_account(&self, t: &TenantId, k: &AdapterKind, u: &MatrixUserId) -> StoreResult<bool> {
        self.timings.time("store.unlink_account", self.inner.unlink_account(t, k, u)).await
    }
    async fn put_management_room(&self, r: &MatrixRoomId, u: &MatrixUserId) -> StoreResult<()> {
        self.inner.put_management_room(r, u).await
    }
    async fn management_room(&self, r: &MatrixRoomId) -> StoreResult<Option<MatrixUserId>> {
        self.inner.management_room(r).await
    }
    async fn remove_management_room(&self, r: &MatrixRoomId) -> StoreResult<bool> {
        self.inner.remove_management_room(r).await
    }
    async fn upsert_portal(&self, p: &Portal) -> StoreResult<()> {
        self.timings.time("store.upsert_portal", self.inner.upsert_portal(p)).await
    }
    async fn portal(&self, k: &PortalKey) -> StoreResult<Option<Portal>> {
        self.timings.time("store.portal", self.inner.portal(k)).await
    }
    async fn adapter_state(&self, t: &TenantId, k: &AdapterKind, key: &str) -> StoreResult<Option<String>> {
        self.inner.adapter_state(t, k, key).await
    }
    async fn put_adapter_state(&self, t: &TenantId, k: &AdapterKind, key: &str, v: Option<&str>) -> StoreResult<()> {
        self.inner.put_adapter_state(t, k, key, v).await
    }
    async fn portal_by_room(&self, r: &MatrixRoomId) -> StoreResult<Option<Portal>> {
        self.timings.time("store.portal_by_room", self.inner.portal_by_room(r)).await
    }
    async fn portals(&self, t: &TenantId) -> StoreResult<Vec<Portal>> {
        self.timings.time("store.portals", self.inner.portals(t)).await
    }
    async fn messages_by_remote(&self, p: &PortalKey, r: &RemoteMessageId) -> StoreResult<Vec<MessageMapping>> {
        self.timings.time("store.messages_by_remote", self.inner.messages_by_remote(p, r)).await
    }
    async fn messages_by_matrix(&self, t: &TenantId, e: &MatrixEventId) -> StoreResult<Vec<MessageMapping>> {
        self.timings.time("store.messages_by_matrix", self.inner.messages_by_matrix(t, e)).await
    }
    async fn enqueue(&self, e: NewOutboxEntry) -> StoreResult<Option<i64>> {
        self.timings.time("store.enqueue", self.inner.enqueue(e)).await
    }
    async fn ingest_transaction(&self, id: &str, e: Vec<NewOutboxEntry>) -> StoreResult<TxnOutcome> {
        self.timings.time("store.ingest_transaction", self.inner.ingest_transaction(id, e)).await
    }
    async fn pending_queues(&self) -> StoreResult<Vec<(PortalKey, Direction)>> {
        self.timings.time("store.pending_queues", self.inner.pending_queues()).await
    }
    async fn pending(&self, p: &PortalKey, d: Direction, after: i64, limit: u32) -> StoreResult<Vec<OutboxEntry>> {
        self.timings.time("store.pending", self.inner.pending(p, d, after, limit)).await
    }
    async fn complete(&self, seq: i64, m: Vec<MessageMapping>) -> StoreResult<()> {
        self.timings.time("store.complete", self.inner.complete(seq, m)).await
    }
    async fn record_failure(&self, seq: i64, e: &str) -> StoreResult<()> {
        self.timings.time("store.record_failure", self.inner.record_failure(seq, e)).await
    }
    async fn dead_letter(&self, seq: i64, e: &str) -> StoreResult<()> {
        self.timings.time("store.dead_letter", self.inner.dead_letter(seq, e)).await
    }
    fn watch_commits(&self, listener: Weak<dyn CommitListener>) -> bool {
        self.inner.watch_commits(listener)
    }
}

/// A [`MatrixSide`] that times every call of the client it wraps.
pub struct TimedMatrix {
    /// The wrapped client.
    pub inner: Arc<dyn MatrixSide>,
    /// Where the times go.
    pub timings: Arc<Timings>,
}

#[async_trait]
impl MatrixSide for TimedMatrix {
    fn bot_user_id(&self) -> &MatrixUserId {
        self.inner.bot_user_id()
    }
    async fn ensure_ghost(&self, u: &MatrixUserId, p: &GhostProfile) -> Result<(), BridgeError> {
        self.timings.time("matrix.ensure_ghost", self.inner.ensure_ghost(u, p)).await
    }
    async fn ensure_room(&self, s: &RoomSpec) -> Result<MatrixRoomId, BridgeError> {
        self.timings.time("matrix.ensure_room", self.inner.ensure_room(s)).await
    }
    async fn ensure_joined(&self, r: &MatrixRoomId, u: &MatrixUserId) -> Result<(), BridgeError> {
        self.timings.time("matrix.ensure_joined", self.inner.ensure_joined(r, u)).await
    }
    async fn set_state(&self, r: &MatrixRoomId, t: &str, k: &str, c: &serde_json::Value) -> Result<(), BridgeError> {
        self.timings.time("matrix.set_state", self.inner.set_state(r, t, k, c)).await
    }
    async fn upload(
        &self,
        u: &MatrixUserId,
        r: Option<&MatrixRoomId>,
        n: &str,
        m: MediaBytes,
    ) -> Result<MatrixFile, BridgeError> {
        self.timings.time("matrix.upload", self.inner.upload(u, r, n, m)).await
    }
    async fn send(
        &self,
        r: &MatrixRoomId,
        u: &MatrixUserId,
        txn: &str,
        b: &EventBody<MatrixEventId>,
    ) -> Result<Option<MatrixEventId>, BridgeError> {
        self.timings.time("matrix.send", self.inner.send(r, u, txn, b)).await
    }
}
