//! Tenants: list, create, show, suspend, resume and delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use brygga_core::{MatrixUserId, Tenant, TenantId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;

/// A tenant as the API shows it.
pub(crate) fn view(tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id,
        "display_name": tenant.display_name,
        "suspended": tenant.suspended,
        "invite": tenant.settings.invite,
        "allowed_servers": tenant.settings.allowed_servers,
        "retention_days": tenant.settings.retention_days,
        "media": tenant.settings.media,
        "encryption": tenant.settings.encryption,
        "matrix_admins": tenant.settings.matrix_admins,
    })
}

/// A tenant id from the path, checked against the caller.
pub(crate) fn tenant_id(caller: &Caller, raw: &str) -> Result<TenantId, ApiError> {
    let id = TenantId::new(raw).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.may_manage(&id)?;
    Ok(id)
}

/// The tenant, which must exist.
pub(crate) async fn existing(state: &ApiState, id: &TenantId) -> Result<Tenant, ApiError> {
    state.store.tenant(id).await?.ok_or_else(|| ApiError::not_found(format!("unknown tenant {id}")))
}

pub(crate) async fn list(caller: Caller, State(state): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let tenants = state.store.tenants().await?;
    let visible = tenants.iter().filter(|t| caller.may_manage(&t.id).is_ok()).map(view).collect::<Vec<_>>();
    Ok(Json(json!({ "tenants": visible })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenant {
    id: String,
    display_name: Option<String>,
    #[serde(default)]
    invite: Vec<String>,
    #[serde(default)]
    allowed_servers: Vec<String>,
    #[serde(default)]
    media: brygga_core::MediaPolicy,
    #[serde(default)]
    encryption: brygga_core::EncryptionPolicy,
    #[serde(default)]
    matrix_admins: Vec<String>,
}

pub(crate) async fn create(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    body: Result<Json<NewTenant>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.must_be_operator()?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = TenantId::new(body.id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if state.store.tenant(&id).await?.is_some() {
        return Err(ApiError::conflict(format!("tenant {id} already exists")));
    }
    let invite = users(body.invite, "invite")?;
    let matrix_admins = users(body.matrix_admins, "matrix_admins")?;
    let mut tenant = Tenant::new(id.clone(), body.display_name.unwrap_or_else(|| id.to_string()));
    tenant.settings.invite = invite;
    tenant.settings.allowed_servers = body.allowed_servers;
    tenant.settings.media = body.media;
    tenant.settings.encryption = body.encryption;
    tenant.settings.matrix_admins = matrix_admins;
    state.store.upsert_tenant(&tenant).await?;
    tracing::info!(tenant = %id, "tenant created through the API");
    Ok((StatusCode::CREATED, Json(view(&tenant))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantChange {
    display_name: Option<String>,
    invite: Option<Vec<String>>,
    allowed_servers: Option<Vec<String>>,
    media: Option<brygga_core::MediaPolicy>,
    encryption: Option<brygga_core::EncryptionPolicy>,
    matrix_admins: Option<Vec<String>>,
}

fn users(list: Vec<String>, key: &str) -> Result<Vec<MatrixUserId>, ApiError> {
    list.into_iter().map(|u| MatrixUserId::new(u).map_err(|e| ApiError::bad_request(format!("{key}: {e}")))).collect()
}

/// Changes a tenant's settings (operator); a new federation policy is set
/// at once as the server ACL of every portal room.
pub(crate) async fn update(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
    body: Result<Json<TenantChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    caller.must_be_operator()?;
    let Json(change) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut tenant = existing(&state, &id).await?;
    let before = tenant.settings.allowed_servers.clone();
    if let Some(name) = change.display_name {
        tenant.display_name = name;
    }
    if let Some(invite) = change.invite {
        tenant.settings.invite = users(invite, "invite")?;
    }
    if let Some(admins) = change.matrix_admins {
        tenant.settings.matrix_admins = users(admins, "matrix_admins")?;
    }
    if let Some(servers) = change.allowed_servers {
        tenant.settings.allowed_servers = servers;
    }
    if let Some(media) = change.media {
        tenant.settings.media = media;
    }
    if let Some(encryption) = change.encryption {
        tenant.settings.encryption = encryption;
    }
    state.store.upsert_tenant(&tenant).await?;
    let failed = match tenant.settings.allowed_servers != before {
        true => state
            .router
            .apply_server_acl(&tenant)
            .await
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE", e.to_string()))?,
        false => Vec::new(),
    };
    tracing::info!(tenant = %id, "tenant settings changed through the API");
    Ok(Json(json!({ "tenant": view(&tenant), "server_acl_failed": failed })))
}

pub(crate) async fn show(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    Ok(Json(view(&existing(&state, &id).await?)))
}

#[derive(Deserialize)]
pub(crate) struct Confirm {
    confirm: Option<String>,
}

pub(crate) async fn delete(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
    Query(confirm): Query<Confirm>,
) -> Result<StatusCode, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    caller.must_be_operator()?;
    existing(&state, &id).await?;
    if confirm.confirm.as_deref() != Some(id.as_str()) {
        return Err(ApiError::bad_request(format!(
            "deleting tenant {id} removes all its data; repeat its id as `?confirm={id}` to confirm"
        )));
    }
    stop_adapters(&state, &id).await;
    state.store.remove_tenant(&id).await?;
    tracing::info!(tenant = %id, "tenant deleted through the API");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn suspend(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_suspended(caller, &state, &tenant, true).await
}

pub(crate) async fn resume(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_suspended(caller, &state, &tenant, false).await
}

/// Suspends (stopping its adapters; their queues are kept) or resumes
/// (starting its enabled adapters) a tenant.
async fn set_suspended(caller: Caller, state: &ApiState, raw: &str, suspended: bool) -> Result<Json<Value>, ApiError> {
    let id = tenant_id(&caller, raw)?;
    caller.must_be_operator()?;
    let mut tenant = existing(state, &id).await?;
    tenant.suspended = suspended;
    state.store.upsert_tenant(&tenant).await?;
    if suspended {
        stop_adapters(state, &id).await;
    } else {
        for config in state.store.adapter_configs(Some(&id)).await?.into_iter().filter(|c| c.enabled) {
            if let Err(err) = state.host.start(&id, &config.kind).await {
                tracing::warn!(tenant = %id, kind = %config.kind, error = %err, "adapter did not start on resume");
            }
        }
    }
    Ok(Json(view(&tenant)))
}

async fn stop_adapters(state: &ApiState, id: &TenantId) {
    for (tenant, kind) in state.host.running() {
        if &tenant == id {
            state.host.stop(&tenant, &kind).await;
        }
    }
}
