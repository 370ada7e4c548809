//! `login`, `logout`, `me` and `/api/info`.

use super::{ApiResult, json_body, success, text};
use crate::error::ApiError;
use crate::server::{SERVER_VERSION, Shared};
use crate::time::Format;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

/// `GET /api/info`: the server version.
pub async fn info() -> ApiResult {
    Ok(success(json!({ "version": SERVER_VERSION })))
}

/// `POST /api/v1/login` with `{user|username, password}`.
pub async fn login(State(s): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    s.validate("POST login", "isLoginProps", &body).await?;
    let name = text(&body, "user").or_else(|| text(&body, "username")).unwrap_or_default();
    let password = text(&body, "password").unwrap_or_default();
    let found = s.with(|ws| {
        let id = ws.user_by_username(name).filter(|u| !password.is_empty() && u.password == password)?.id.clone();
        let token = ws.issue_token(&id)?;
        Some((ws.user(&id)?.render(Format::Rest), id, token))
    });
    let Some((me, user_id, token)) = found else {
        let body = json!({ "status": "error", "error": "Unauthorized", "message": "Unauthorized" });
        return Ok((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
    };
    Ok(axum::Json(json!({ "status": "success", "data": { "userId": user_id, "authToken": token, "me": me } }))
        .into_response())
}

/// `POST /api/v1/logout`: revokes the token used.
pub async fn logout(State(s): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    let user = s.authenticate(&headers)?;
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    s.with(|ws| ws.user_mut(&user.id).map(|u| u.tokens.retain(|t| *t != token)));
    s.hub.drop_logins(&user.id, Some(&token));
    Ok(axum::Json(json!({ "status": "success", "data": { "message": "You've been logged out!" } })).into_response())
}

/// `GET /api/v1/me`.
pub async fn me(State(s): State<Arc<Shared>>, headers: HeaderMap) -> ApiResult {
    let user = s.authenticate(&headers)?;
    Ok(success(user.render(Format::Rest)))
}

/// Fails with 403 unless `user` holds `permission` (routes with `permissionsRequired`).
pub fn require(user: &crate::model::User, permission: &str) -> Result<(), ApiError> {
    if user.can(permission) { Ok(()) } else { Err(ApiError::forbidden()) }
}
