//! Tenant-admin tokens, created and revoked by the operator. The secret is
//! shown once, when it is created; only its hash is kept.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brygga_core::AdminToken;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Caller, hash_token};
use super::error::ApiError;
use super::tenants::{existing, tenant_id};

fn view(token: &AdminToken) -> Value {
    json!({"id": token.id, "tenant": token.tenant, "label": token.label, "created_at": token.created_at})
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

pub(crate) async fn list(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    caller.must_be_operator()?;
    existing(&state, &id).await?;
    let tokens = state.store.admin_tokens(&id).await?;
    Ok(Json(json!({"tokens": tokens.iter().map(view).collect::<Vec<_>>()})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    label: Option<String>,
}

pub(crate) async fn create(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
    body: Option<Json<NewToken>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    caller.must_be_operator()?;
    existing(&state, &id).await?;
    let secret = format!("bgt_{}", random_hex(32));
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let mut token = AdminToken::new(format!("tok_{}", random_hex(8)), id.clone(), hash_token(&secret), created_at);
    token.label = body.and_then(|Json(b)| b.label);
    state.store.put_admin_token(&token).await?;
    tracing::info!(tenant = %id, token = %token.id, "tenant-admin token created");
    let mut shown = view(&token);
    shown["token"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(shown)))
}

pub(crate) async fn revoke(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path((tenant, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    caller.must_be_operator()?;
    if !state.store.remove_admin_token(&id, &token).await? {
        return Err(ApiError::not_found(format!("tenant {id} has no token {token}")));
    }
    tracing::info!(tenant = %id, token = %token, "tenant-admin token revoked");
    Ok(StatusCode::NO_CONTENT)
}
