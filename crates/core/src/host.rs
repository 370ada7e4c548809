//! Starts and stops adapters per tenant at run time.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::adapter::{Adapter, AdapterContext, AdapterFactory, MatrixMedia, MediaLinks};
use crate::error::{BridgeError, StoreError};
use crate::ids::{AdapterKind, TenantId};
use crate::router::Router;
use crate::running::RunningAdapters;
use crate::shard::{Ownership, OwnsAll};
use crate::status::StatusBoard;
use crate::store::Store;

/// Why an adapter could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No factory for this kind is compiled in.
    #[error("unknown adapter kind {0:?}; known kinds: {1}")]
    UnknownKind(String, String),
    /// The tenant does not exist.
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    /// The tenant has no config for this adapter.
    #[error("tenant {0} has no config for adapter {1}")]
    NoConfig(String, String),
    /// The adapter rejected its config.
    #[error("invalid config for adapter {kind} of tenant {tenant}: {reason}")]
    InvalidConfig {
        /// Tenant.
        tenant: String,
        /// Adapter kind.
        kind: String,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// Building or connecting failed.
    #[error("adapter {kind} of tenant {tenant} failed to start: {source}")]
    Start {
        /// Tenant.
        tenant: String,
        /// Adapter kind.
        kind: String,
        /// The failure.
        source: BridgeError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Owns the adapter factories and the running adapters.
pub struct AdapterHost {
    factories: BTreeMap<AdapterKind, Arc<dyn AdapterFactory>>,
    running: RunningAdapters,
    store: Arc<dyn Store>,
    router: Router,
    media: Arc<dyn MatrixMedia>,
    media_links: Option<Arc<dyn MediaLinks>>,
    status: StatusBoard,
    ownership: Arc<dyn Ownership>,
    lifecycle: tokio::sync::Mutex<()>,
}

impl AdapterHost {
    /// Builds a host; no adapter runs until started.
    pub fn new(
        factories: Vec<Arc<dyn AdapterFactory>>,
        running: RunningAdapters,
        store: Arc<dyn Store>,
        router: Router,
        media: Arc<dyn MatrixMedia>,
    ) -> Self {
        let factories = factories.into_iter().map(|f| (f.kind(), f)).collect();
        let status = router.status_board().clone();
        Self {
            factories,
            running,
            store,
            router,
            media,
            media_links: None,
            status,
            ownership: Arc::new(OwnsAll),
            lifecycle: tokio::sync::Mutex::new(()),
        }
    }

    /// Gives adapters public links to Matrix media.
    pub fn with_media_links(mut self, links: Arc<dyn MediaLinks>) -> Self {
        self.media_links = Some(links);
        self
    }

    /// Runs adapters only of the tenants this process owns.
    pub fn with_ownership(mut self, ownership: Arc<dyn Ownership>) -> Self {
        self.ownership = ownership;
        self
    }

    /// The adapter kinds this build knows.
    pub fn kinds(&self) -> Vec<AdapterKind> {
        self.factories.keys().cloned().collect()
    }

    /// The factory of a kind, or an error listing the known kinds.
    pub fn factory(&self, kind: &str) -> Result<&Arc<dyn AdapterFactory>, HostError> {
        AdapterKind::new(kind)
            .ok()
            .and_then(|k| self.factories.get(&k))
            .ok_or_else(|| HostError::UnknownKind(kind.to_owned(), self.known_kinds()))
    }

    fn known_kinds(&self) -> String {
        self.factories.keys().map(AdapterKind::as_str).collect::<Vec<_>>().join(", ")
    }

    /// Starts every enabled adapter of every active tenant (this process
    /// owns); returns failures.
    pub async fn start_enabled(&self) -> Result<Vec<HostError>, HostError> {
        self.start_enabled_of(None).await
    }

    /// Starts every enabled adapter of one tenant (just taken over).
    pub async fn start_tenant(&self, tenant: &TenantId) -> Result<Vec<HostError>, HostError> {
        self.start_enabled_of(Some(tenant)).await
    }

    /// Stops every adapter of one tenant (given up to another process).
    pub async fn stop_tenant(&self, tenant: &TenantId) {
        for (running, kind) in self.running.keys() {
            if &running == tenant {
                self.stop(&running, &kind).await;
            }
        }
    }

    async fn start_enabled_of(&self, tenant: Option<&TenantId>) -> Result<Vec<HostError>, HostError> {
        let mut failures = Vec::new();
        for config in self.store.adapter_configs(tenant).await? {
            if !self.ownership.owns(&config.tenant) {
                continue;
            }
            if !config.enabled {
                continue;
            }
            if let Err(err) = self.start(&config.tenant, &config.kind).await {
                tracing::error!(tenant = %config.tenant, kind = %config.kind, error = %err, "adapter not started");
                failures.push(err);
            }
        }
        Ok(failures)
    }

    /// Starts (or restarts) one adapter from its stored config.
    pub async fn start(&self, tenant: &TenantId, kind: &AdapterKind) -> Result<(), HostError> {
        let _guard = self.lifecycle.lock().await;
        let factory = self.factory(kind.as_str())?.clone();
        let stored = self.store.tenant(tenant).await?;
        match stored {
            None => return Err(HostError::UnknownTenant(tenant.to_string())),
            Some(t) if t.suspended => {
                tracing::info!(tenant = %tenant, "tenant suspended; adapter not started");
                return Ok(());
            }
            // Its owner runs it (and starts it from the stored config).
            Some(_) if !self.ownership.owns(tenant) => {
                tracing::info!(tenant = %tenant, kind = %kind, "tenant owned by another process; adapter not started here");
                return Ok(());
            }
            Some(_) => {}
        }
        let config = self
            .store
            .adapter_config(tenant, kind)
            .await?
            .ok_or_else(|| HostError::NoConfig(tenant.to_string(), kind.to_string()))?;
        factory.validate(&config.config).map_err(|reason| HostError::InvalidConfig {
            tenant: tenant.to_string(),
            kind: kind.to_string(),
            reason,
        })?;
        let start_err = |source| HostError::Start { tenant: tenant.to_string(), kind: kind.to_string(), source };
        let ctx = AdapterContext::new(
            tenant.clone(),
            config.config,
            self.router.sink(tenant.clone(), kind.clone()),
            self.media.clone(),
        )
        .with_portals(self.router.portal_directory(tenant.clone(), kind.clone()))
        .with_state(self.router.adapter_state(tenant.clone(), kind.clone()))
        .with_media_links(self.media_links.clone())
        .with_status(self.status.reporter(tenant.clone(), kind.clone()));
        let adapter = factory.build(ctx).map_err(start_err)?;
        if let Some(old) = self.running.remove(tenant, kind) {
            old.stop().await;
        }
        adapter.start().await.map_err(start_err)?;
        self.running.insert(tenant.clone(), kind.clone(), adapter);
        tracing::info!(tenant = %tenant, kind = %kind, "adapter started");
        if let Err(err) = self.router.wake_outbound(tenant, kind).await {
            tracing::warn!(tenant = %tenant, kind = %kind, error = %err, "waking queued events failed");
        }
        Ok(())
    }

    /// Stops one adapter; its queued events stay stored. False if not running.
    pub async fn stop(&self, tenant: &TenantId, kind: &AdapterKind) -> bool {
        let _guard = self.lifecycle.lock().await;
        self.status.clear(tenant, kind);
        match self.running.remove(tenant, kind) {
            Some(adapter) => {
                adapter.stop().await;
                tracing::info!(tenant = %tenant, kind = %kind, "adapter stopped");
                true
            }
            None => false,
        }
    }

    /// Stops every adapter.
    pub async fn stop_all(&self) {
        for (tenant, kind) in self.running.keys() {
            self.stop(&tenant, &kind).await;
        }
    }

    /// The running adapter of a tenant, e.g. to hand it a webhook request.
    pub fn adapter(&self, tenant: &TenantId, kind: &AdapterKind) -> Option<Arc<dyn Adapter>> {
        self.running.get(tenant, kind)
    }

    /// What the adapters report about their health.
    pub fn status(&self) -> &StatusBoard {
        &self.status
    }

    /// Which adapters run.
    pub fn running(&self) -> Vec<(TenantId, AdapterKind)> {
        self.running.keys()
    }
}
