//! Several brygga processes (nodes) sharing one PostgreSQL store. Each
//! tenant is owned by one node at a time through a lease row that the node
//! renews; a node that falls silent loses its tenants to the others once
//! its leases expire. The owner runs the tenant's adapters and delivers its
//! queues; any node accepts the homeserver's transactions and stores them,
//! and tells the owner through a PostgreSQL notification. Requests only the
//! owner can answer (the admin API of a tenant, its platforms' webhooks,
//! alias queries) are forwarded to it.

mod forward;
mod keeper;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_core::{LeaseStore, Node, Ownership, TenantId};
use tokio::time::Instant;

pub use forward::{ShardedAppservice, forward_admin, forward_webhooks};
pub use keeper::Keeper;

/// This node's view of who owns which tenant.
pub struct Shard {
    node: Node,
    /// How long a lease lasts.
    ttl: Duration,
    leases: Arc<dyn LeaseStore>,
    /// Tenants held, each until its local deadline.
    held: Mutex<HashMap<TenantId, Instant>>,
    /// Client for forwarding to peers.
    http: reqwest::Client,
}

/// Who serves a tenant.
#[derive(Debug)]
pub enum Owner {
    /// This node.
    Me,
    /// Another live node.
    Peer(Node),
    /// Nobody at the moment (between a node's death and a takeover).
    Nobody,
}

impl Shard {
    /// A node of the group; it owns nothing until its keeper claims.
    pub fn new(node: Node, ttl: Duration, leases: Arc<dyn LeaseStore>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { node, ttl, leases, held: Mutex::default(), http })
    }

    /// This node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Who serves `tenant` now, as the store says (asked each time: these
    /// questions are rare, and a takeover must be seen at once).
    pub async fn owner(&self, tenant: &TenantId) -> Owner {
        if self.owns(tenant) {
            return Owner::Me;
        }
        match self.leases.owner(tenant).await {
            Ok(Some(node)) if node.id == self.node.id => Owner::Nobody,
            Ok(Some(node)) => Owner::Peer(node),
            Ok(None) => Owner::Nobody,
            Err(err) => {
                tracing::warn!(tenant = %tenant, error = %err, "looking up a tenant's owner failed");
                Owner::Nobody
            }
        }
    }

    /// The tenants held, sorted.
    pub fn held(&self) -> Vec<TenantId> {
        let mut held: Vec<_> = self.held.lock().expect("lease map poisoned").keys().cloned().collect();
        held.sort();
        held
    }
}

impl Ownership for Shard {
    fn owns(&self, tenant: &TenantId) -> bool {
        // The local deadline ends before the lease does in the store, so a
        // stalled node stops delivering before anyone can take over.
        self.held.lock().expect("lease map poisoned").get(tenant).is_some_and(|deadline| Instant::now() < *deadline)
    }
}
