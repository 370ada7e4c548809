//! Which tenants this process serves. With one process that is every
//! tenant; when several processes share a store, each tenant is owned by
//! one of them at a time (a lease), and only the owner runs its adapters
//! and delivers its queues.

use std::sync::{Arc, OnceLock};

use crate::ids::TenantId;
use crate::store::StoreResult;

/// Whether this process currently owns a tenant.
pub trait Ownership: Send + Sync {
    /// True while this process may deliver for `tenant`. Must turn false
    /// before another process can take the tenant over.
    fn owns(&self, tenant: &TenantId) -> bool;
}

/// The ownership every part of a process consults: every tenant until
/// [`Owners::set`] is called (once, at start-up).
#[derive(Clone, Default)]
pub struct Owners(Arc<OnceLock<Arc<dyn Ownership>>>);

impl Owners {
    /// From now on, `ownership` decides (only the first call counts).
    pub fn set(&self, ownership: Arc<dyn Ownership>) {
        let _ = self.0.set(ownership);
    }

    /// Whether this process owns `tenant` now.
    pub fn owns(&self, tenant: &TenantId) -> bool {
        self.0.get().is_none_or(|o| o.owns(tenant))
    }
}

/// One process serving every tenant.
pub struct OwnsAll;

impl Ownership for OwnsAll {
    fn owns(&self, _tenant: &TenantId) -> bool {
        true
    }
}

/// A process sharing the store with others.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// Its id, unique among the processes sharing the store.
    pub id: String,
    /// Where its admin API is reached by the other processes.
    pub admin_url: String,
    /// Where its appservice listener is reached by the other processes.
    pub appservice_url: String,
}

impl Node {
    /// Describes a node.
    pub fn new(id: impl Into<String>, admin_url: impl Into<String>, appservice_url: impl Into<String>) -> Self {
        Self { id: id.into(), admin_url: admin_url.into(), appservice_url: appservice_url.into() }
    }
}

/// Who owns a tenant, as the store says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The tenant.
    pub tenant: TenantId,
    /// The node holding (or last holding) it.
    pub node: String,
    /// Milliseconds until it expires (zero or less: expired).
    pub remaining_ms: i64,
}

impl Lease {
    /// Describes a lease.
    pub fn new(tenant: TenantId, node: impl Into<String>, remaining_ms: i64) -> Self {
        Self { tenant, node: node.into(), remaining_ms }
    }

    /// Whether it still holds.
    pub fn live(&self) -> bool {
        self.remaining_ms > 0
    }
}

/// Leases on tenants and the liveness of nodes, kept in a store shared by
/// several processes. Every time is the store's clock, so nodes' clocks
/// need not agree.
#[async_trait::async_trait]
pub trait LeaseStore: Send + Sync {
    /// Records `node` as alive and returns every node seen within `live_ms`.
    async fn heartbeat(&self, node: &Node, live_ms: i64) -> StoreResult<Vec<Node>>;

    /// Every lease.
    async fn leases(&self) -> StoreResult<Vec<Lease>>;

    /// The node holding a live lease on `tenant`, if any.
    async fn owner(&self, tenant: &TenantId) -> StoreResult<Option<Node>>;

    /// Takes `tenant` for `node` for `ttl_ms`, if no live lease holds it.
    async fn claim(&self, tenant: &TenantId, node: &str, ttl_ms: i64) -> StoreResult<bool>;

    /// Extends every unexpired lease of `node`; returns the tenants it still holds.
    async fn renew(&self, node: &str, ttl_ms: i64) -> StoreResult<Vec<TenantId>>;

    /// Gives `tenant` up at once, so another node can take it.
    async fn release(&self, tenant: &TenantId, node: &str) -> StoreResult<()>;
}
