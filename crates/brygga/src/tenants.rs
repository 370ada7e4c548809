//! Tenant and adapter administration on the store, shared by the CLI and
//! start-up seeding.

use brygga_core::{AdapterConfig, AdapterHost, AdapterKind, Store, Tenant, TenantId, TenantSettings};

use crate::config::TenantSeed;

/// Creates the config's tenants and adapter configs that do not exist yet;
/// what an admin changed since is left alone.
pub async fn seed(store: &dyn Store, host: &AdapterHost, seeds: &[TenantSeed]) -> anyhow::Result<()> {
    for seed in seeds {
        if store.tenant(&seed.id).await?.is_none() {
            let mut tenant =
                Tenant::new(seed.id.clone(), seed.display_name.clone().unwrap_or_else(|| seed.id.to_string()));
            tenant.settings = settings(seed);
            store.upsert_tenant(&tenant).await?;
            tracing::info!(tenant = %seed.id, "tenant created from config");
        }
        for (kind, adapter) in &seed.adapters {
            let factory =
                host.factory(kind).map_err(|e| anyhow::anyhow!("config key `tenants.{}.adapters`: {e}", seed.id))?;
            factory
                .validate(&adapter.config)
                .map_err(|e| anyhow::anyhow!("config key `tenants.{}.adapters.{kind}.config`: {e}", seed.id))?;
            let kind = factory.kind();
            if store.adapter_config(&seed.id, &kind).await?.is_none() {
                let config = AdapterConfig::new(seed.id.clone(), kind, adapter.enabled, adapter.config.clone());
                store.put_adapter_config(&config).await?;
            }
        }
    }
    Ok(())
}

fn settings(seed: &TenantSeed) -> TenantSettings {
    let mut settings = TenantSettings::default();
    settings.invite = seed.invite.clone();
    settings.allowed_servers = seed.allowed_servers.clone();
    settings.retention_days = seed.retention_days;
    settings.media = seed.media.clone();
    settings.encryption = seed.encryption;
    settings.matrix_admins = seed.matrix_admins.clone();
    settings
}

/// Adds a tenant; fails if it exists.
pub async fn add(
    store: &dyn Store,
    id: &TenantId,
    name: Option<String>,
    invite: Vec<brygga_core::MatrixUserId>,
) -> anyhow::Result<()> {
    if store.tenant(id).await?.is_some() {
        anyhow::bail!("tenant {id} already exists");
    }
    let mut tenant = Tenant::new(id.clone(), name.unwrap_or_else(|| id.to_string()));
    tenant.settings.invite = invite;
    store.upsert_tenant(&tenant).await?;
    Ok(())
}

/// Enables (creating or replacing its config when given) or disables an adapter.
pub async fn set_adapter(
    store: &dyn Store,
    host: &AdapterHost,
    tenant: &TenantId,
    kind: &str,
    enabled: bool,
    config: Option<serde_json::Value>,
) -> anyhow::Result<AdapterKind> {
    let factory = host.factory(kind)?;
    let kind = factory.kind();
    if store.tenant(tenant).await?.is_none() {
        anyhow::bail!("unknown tenant {tenant}");
    }
    match config {
        Some(config) => {
            factory.validate(&config).map_err(|e| anyhow::anyhow!("invalid config for adapter {kind}: {e}"))?;
            store.put_adapter_config(&AdapterConfig::new(tenant.clone(), kind.clone(), enabled, config)).await?;
        }
        None => {
            if !store.set_adapter_enabled(tenant, &kind, enabled).await? {
                if !enabled {
                    anyhow::bail!("tenant {tenant} has no config for adapter {kind}");
                }
                let empty = serde_json::json!({});
                factory
                    .validate(&empty)
                    .map_err(|e| anyhow::anyhow!("adapter {kind} needs a config (--adapter-config): {e}"))?;
                store.put_adapter_config(&AdapterConfig::new(tenant.clone(), kind.clone(), true, empty)).await?;
            }
        }
    }
    Ok(kind)
}
