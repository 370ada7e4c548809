//! The lease keeper: every third of a lease it renews this node's leases,
//! takes over tenants nobody holds (up to a fair share of the live nodes)
//! and hands surplus tenants to a node with fewer.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use brygga_core::{AdapterHost, Router, Store, TenantId};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Shard;

/// How long a node giving a tenant up waits for its deliveries in flight.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

/// Keeps this node's leases and starts and stops its tenants.
pub struct Keeper {
    shard: Arc<Shard>,
    store: Arc<dyn Store>,
    host: Arc<AdapterHost>,
    router: Router,
}

impl Keeper {
    /// A keeper for `shard`, running the tenants it wins on `host`.
    pub fn new(shard: Arc<Shard>, store: Arc<dyn Store>, host: Arc<AdapterHost>, router: Router) -> Self {
        Self { shard, store, host, router }
    }

    /// Runs rounds until `stop`, then gives every tenant up so that the
    /// other nodes take over at once instead of after the lease.
    pub async fn run(self, stop: CancellationToken) {
        let every = self.shard.ttl / 3;
        loop {
            if let Err(err) = self.round().await {
                tracing::warn!(error = %err, "lease round failed; retrying");
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        for tenant in self.shard.held() {
            self.give_up(&tenant, true).await;
        }
    }

    /// One round: heartbeat, renew, take over, hand over.
    async fn round(&self) -> anyhow::Result<()> {
        let shard = &self.shard;
        let me = shard.node.id.as_str();
        let ttl_ms = shard.ttl.as_millis() as i64;
        let started = Instant::now();
        // A fifth of the lease as margin for this node's stalls and skew.
        let deadline = started + shard.ttl - shard.ttl / 5;
        let live = shard.leases.heartbeat(&shard.node, ttl_ms).await?;
        let renewed: HashSet<TenantId> = shard.leases.renew(me, ttl_ms).await?.into_iter().collect();
        let (lost, resumed) = self.refresh(&renewed, started, deadline);
        for tenant in lost {
            tracing::warn!(tenant = %tenant, "lease lost to another node; tenant stopped here");
            self.give_up(&tenant, false).await;
        }
        for tenant in resumed {
            // This node stalled past its own deadline; its queues stopped.
            self.resume(&tenant).await;
        }

        let tenants: Vec<TenantId> = self.store.tenants().await?.into_iter().map(|t| t.id).collect();
        let leases = shard.leases.leases().await?;
        let nodes: HashSet<&str> = live.iter().map(|n| n.id.as_str()).collect();
        let mut load: BTreeMap<&str, usize> = nodes.iter().map(|id| (*id, 0)).collect();
        let mut taken = HashSet::new();
        for lease in leases.iter().filter(|l| l.live()) {
            taken.insert(lease.tenant.clone());
            if let Some(count) = load.get_mut(lease.node.as_str()) {
                *count += 1;
            }
        }

        let fair = tenants.len().div_ceil(live.len().max(1));
        let mut held = shard.held().len();
        for tenant in tenants.iter().filter(|t| !taken.contains(*t)) {
            if held >= fair {
                break;
            }
            if shard.leases.claim(tenant, me, ttl_ms).await? {
                shard.held.lock().expect("lease map poisoned").insert(tenant.clone(), deadline);
                held += 1;
                tracing::info!(tenant = %tenant, node = me, "tenant taken over");
                self.resume(tenant).await;
            }
        }
        // Hand one surplus tenant per round to a node that has fewer than its share.
        let short = load.iter().any(|(node, count)| *node != me && *count < fair);
        if held > fair
            && short
            && let Some(tenant) = shard.held().pop()
        {
            tracing::info!(tenant = %tenant, node = me, "handing a surplus tenant over");
            self.give_up(&tenant, true).await;
        }
        Ok(())
    }

    /// Applies a renewal: extends held tenants' deadlines and returns the
    /// tenants lost, and those whose local deadline had already passed.
    fn refresh(
        &self,
        renewed: &HashSet<TenantId>,
        started: Instant,
        deadline: Instant,
    ) -> (Vec<TenantId>, Vec<TenantId>) {
        let mut held = self.shard.held.lock().expect("lease map poisoned");
        let lost: Vec<TenantId> = held.keys().filter(|t| !renewed.contains(*t)).cloned().collect();
        for tenant in &lost {
            held.remove(tenant);
        }
        let mut resumed = Vec::new();
        for (tenant, until) in held.iter_mut() {
            if *until <= started {
                resumed.push(tenant.clone());
            }
            *until = deadline;
        }
        (lost, resumed)
    }

    /// Starts serving a tenant: its stored events, then its adapters.
    async fn resume(&self, tenant: &TenantId) {
        match self.router.recover_tenant(tenant).await {
            Ok(queues) => tracing::info!(tenant = %tenant, queues, "resumed the tenant's stored events"),
            Err(err) => tracing::warn!(tenant = %tenant, error = %err, "resuming stored events failed"),
        }
        match self.host.start_tenant(tenant).await {
            Ok(failures) if failures.is_empty() => {}
            Ok(failures) => tracing::warn!(tenant = %tenant, count = failures.len(), "some adapters did not start"),
            Err(err) => tracing::warn!(tenant = %tenant, error = %err, "starting the tenant's adapters failed"),
        }
    }

    /// Stops serving a tenant; with `release`, frees its lease for others
    /// once no delivery is in flight.
    async fn give_up(&self, tenant: &TenantId, release: bool) {
        self.shard.held.lock().expect("lease map poisoned").remove(tenant);
        self.host.stop_tenant(tenant).await;
        if !self.router.drain_tenant(tenant, DRAIN_PATIENCE).await {
            tracing::warn!(tenant = %tenant, "deliveries still retrying while giving the tenant up");
        }
        if release && let Err(err) = self.shard.leases.release(tenant, &self.shard.node.id).await {
            tracing::warn!(tenant = %tenant, error = %err, "releasing the lease failed; it expires instead");
        }
    }
}
