//! Who is calling: the operator or a tenant's admin, from the bearer token.
//! Tenant-admin tokens are stored as SHA-256 hashes and looked up by hash;
//! the operator token is compared in constant time.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use brygga_core::TenantId;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;

/// The caller, as its token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    Operator,
    TenantAdmin(TenantId),
}

impl Caller {
    /// Fails unless the caller may act on `tenant`.
    pub(crate) fn may_manage(&self, tenant: &TenantId) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::TenantAdmin(own) if own == tenant => Ok(()),
            Caller::TenantAdmin(own) => Err(ApiError::forbidden(format!(
                "this token administers tenant {own} only; it cannot act on tenant {tenant}"
            ))),
        }
    }

    /// Fails unless the caller is the operator.
    pub(crate) fn must_be_operator(&self) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::TenantAdmin(_) => Err(ApiError::forbidden("only the operator may do this")),
        }
    }
}

/// Hex SHA-256 of a token, as tenant-admin tokens are stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing token: send `Authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("malformed Authorization header: expected `Bearer <token>`"))?;
        if let Some(operator) = &state.operator_token
            && bool::from(operator.as_bytes().ct_eq(token.as_bytes()))
        {
            return Ok(Caller::Operator);
        }
        match state.store.admin_token_by_hash(&hash_token(token)).await? {
            Some(found) => Ok(Caller::TenantAdmin(found.tenant)),
            None => Err(ApiError::unauthorized("unknown or revoked token")),
        }
    }
}

/// `GET /whoami`: what the token may do.
pub(crate) async fn whoami(caller: Caller, State(_): State<Arc<ApiState>>) -> Json<Value> {
    Json(match caller {
        Caller::Operator => json!({"role": "operator"}),
        Caller::TenantAdmin(tenant) => json!({"role": "tenant_admin", "tenant": tenant}),
    })
}
