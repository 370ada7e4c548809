//! Bearer authentication of Graph requests and Graph's permission checks.

use crate::error::GraphError;
use crate::model::SentVia;
use crate::state::Shared;
use crate::world::{AccessToken, TokenKind};
use axum::http::HeaderMap;

/// The caller of a Graph request, as its access token says.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's record.
    pub token: AccessToken,
}

impl Caller {
    /// The tenant the token is for.
    pub fn tenant(&self) -> &str {
        &self.token.tenant
    }

    /// The signed-in user of a delegated token.
    pub fn user(&self) -> Option<&str> {
        match &self.token.kind {
            TokenKind::Delegated { user } => Some(user),
            TokenKind::App => None,
        }
    }

    /// How a change made by this caller is recorded.
    pub fn via(&self) -> SentVia {
        match &self.token.kind {
            TokenKind::Delegated { user } => SentVia::Delegated { user: user.clone() },
            TokenKind::App => SentVia::App,
        }
    }

    /// The signed-in user, or Graph's refusal of an app-only call to a delegated-only API.
    pub fn delegated_user(&self) -> Result<&str, GraphError> {
        self.user().ok_or_else(|| GraphError::forbidden("Requested API is not supported in application-only context"))
    }

    /// Requires one of `app_roles` (app-only) or `scopes` (delegated), answering like Graph when missing.
    pub fn require(&self, app_roles: &[&str], scopes: &[&str]) -> Result<(), GraphError> {
        let (wanted, kind) = match self.token.kind {
            TokenKind::App => (app_roles, "role"),
            TokenKind::Delegated { .. } => (scopes, "scope"),
        };
        if wanted.is_empty() {
            return Err(GraphError::forbidden(if kind == "role" {
                "Requested API is not supported in application-only context"
            } else {
                "Requested API is not supported in delegated context"
            }));
        }
        if self.token.permissions.iter().any(|p| wanted.contains(&p.as_str())) {
            return Ok(());
        }
        let plural = if kind == "role" { "Roles" } else { "Scopes" };
        Err(GraphError::forbidden(format!(
            "Missing {kind} permissions on the request. API requires one of '{}'. {plural} on the request '{}'.",
            wanted.join(", "),
            self.token.permissions.join(", ")
        )))
    }
}

impl Shared {
    /// The caller the `Authorization: Bearer` header names, or Graph's 401.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, GraphError> {
        let header = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(value) = header.strip_prefix("Bearer ").map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(GraphError::invalid_token("Access token is empty."));
        };
        let token = self.with(|w| w.tokens.get(value).cloned());
        let Some(token) = token else {
            return Err(GraphError::invalid_token("IDX14100: JWT is not well formed, there are no dots (.)."));
        };
        if token.expires <= crate::time::now() {
            return Err(GraphError::invalid_token("Lifetime validation failed, the token is expired."));
        }
        Ok(Caller { token })
    }
}
