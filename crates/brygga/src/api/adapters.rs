//! A tenant's adapters: list, show, configure, enable and disable, each
//! taking effect at once for that adapter of that tenant only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use brygga_core::{AdapterConfig, AdapterKind, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::tenants::{existing, tenant_id};

/// An adapter's state as the API shows it (never its config, which holds credentials).
fn view(state: &ApiState, config: &AdapterConfig) -> Value {
    let running = state.host.adapter(&config.tenant, &config.kind).is_some();
    let reported = state.host.status().get(&config.tenant, &config.kind).filter(|_| running);
    let status = match (config.enabled, running, &reported) {
        (false, _, _) => json!("disabled"),
        (true, false, _) => json!("stopped"),
        (true, true, Some(reported)) => json!(reported.health),
        (true, true, None) => json!("connecting"),
    };
    json!({
        "kind": config.kind,
        "enabled": config.enabled,
        "running": running,
        "status": status,
        "last_error": reported.as_ref().and_then(|r| r.last_error.clone()),
        "last_error_at": reported.as_ref().and_then(|r| r.last_error_at),
    })
}

/// The tenant and the adapter kind from the path, checked.
async fn target(
    state: &ApiState,
    caller: &Caller,
    tenant: &str,
    kind: &str,
) -> Result<(TenantId, AdapterKind), ApiError> {
    let id = tenant_id(caller, tenant)?;
    let kind = state.host.factory(kind)?.kind();
    existing(state, &id).await?;
    Ok((id, kind))
}

async fn configured(state: &ApiState, id: &TenantId, kind: &AdapterKind) -> Result<AdapterConfig, ApiError> {
    state
        .store
        .adapter_config(id, kind)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {id} has no {kind} adapter configured")))
}

pub(crate) async fn list(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    existing(&state, &id).await?;
    let configs = state.store.adapter_configs(Some(&id)).await?;
    Ok(Json(json!({"adapters": configs.iter().map(|c| view(&state, c)).collect::<Vec<_>>()})))
}

pub(crate) async fn show(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path((tenant, kind)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (id, kind) = target(&state, &caller, &tenant, &kind).await?;
    Ok(Json(view(&state, &configured(&state, &id, &kind).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Configure {
    config: Value,
    enabled: Option<bool>,
}

/// Replaces an adapter's config (validated by the adapter first) and
/// restarts that adapter alone when it is enabled.
pub(crate) async fn configure(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path((tenant, kind)): Path<(String, String)>,
    body: Result<Json<Configure>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (id, kind) = target(&state, &caller, &tenant, &kind).await?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    state.host.factory(kind.as_str())?.validate(&body.config).map_err(|reason| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_CONFIG",
            format!("invalid config for adapter {kind}: {reason}"),
        )
    })?;
    let before = state.store.adapter_config(&id, &kind).await?;
    let enabled = body.enabled.or(before.map(|b| b.enabled)).unwrap_or(true);
    let config = AdapterConfig::new(id.clone(), kind.clone(), enabled, body.config);
    state.store.put_adapter_config(&config).await?;
    apply(&state, &config).await?;
    Ok(Json(view(&state, &config)))
}

pub(crate) async fn enable(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path((tenant, kind)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    toggle(&state, &caller, &tenant, &kind, true).await
}

pub(crate) async fn disable(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path((tenant, kind)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    toggle(&state, &caller, &tenant, &kind, false).await
}

async fn toggle(
    state: &ApiState,
    caller: &Caller,
    tenant: &str,
    kind: &str,
    on: bool,
) -> Result<Json<Value>, ApiError> {
    let (id, kind) = target(state, caller, tenant, kind).await?;
    let mut config = configured(state, &id, &kind).await?;
    state.store.set_adapter_enabled(&id, &kind, on).await?;
    config.enabled = on;
    apply(state, &config).await?;
    Ok(Json(view(state, &config)))
}

/// Makes the running adapters match the stored config: a disabled adapter
/// stops (its queued events stay in the store until it runs again), an
/// enabled one (re)starts.
async fn apply(state: &ApiState, config: &AdapterConfig) -> Result<(), ApiError> {
    if config.enabled {
        state.host.start(&config.tenant, &config.kind).await?;
    } else {
        state.host.stop(&config.tenant, &config.kind).await;
    }
    tracing::info!(tenant = %config.tenant, kind = %config.kind, enabled = config.enabled, "adapter changed through the API");
    Ok(())
}
