//! The registry of adapters currently running, per tenant and kind.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::adapter::Adapter;
use crate::ids::{AdapterKind, TenantId};

/// One adapter instance per tenant and kind.
type Registry = HashMap<(TenantId, AdapterKind), Arc<dyn Adapter>>;

/// Running adapters, shared by the host (which starts them) and the router
/// (which delivers to them).
#[derive(Clone, Default)]
pub struct RunningAdapters {
    inner: Arc<RwLock<Registry>>,
}

impl RunningAdapters {
    /// The running adapter of a tenant, if any.
    pub fn get(&self, tenant: &TenantId, kind: &AdapterKind) -> Option<Arc<dyn Adapter>> {
        self.inner.read().expect("adapter registry poisoned").get(&(tenant.clone(), kind.clone())).cloned()
    }

    /// Registers a started adapter, returning the one it replaces.
    pub fn insert(&self, tenant: TenantId, kind: AdapterKind, adapter: Arc<dyn Adapter>) -> Option<Arc<dyn Adapter>> {
        self.inner.write().expect("adapter registry poisoned").insert((tenant, kind), adapter)
    }

    /// Unregisters an adapter.
    pub fn remove(&self, tenant: &TenantId, kind: &AdapterKind) -> Option<Arc<dyn Adapter>> {
        self.inner.write().expect("adapter registry poisoned").remove(&(tenant.clone(), kind.clone()))
    }

    /// Which adapters run, sorted.
    pub fn keys(&self) -> Vec<(TenantId, AdapterKind)> {
        let mut keys: Vec<_> = self.inner.read().expect("adapter registry poisoned").keys().cloned().collect();
        keys.sort();
        keys
    }
}
