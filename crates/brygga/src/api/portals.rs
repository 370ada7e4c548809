//! A tenant's portals (list, link, unlink) and ghosts (list and search).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use brygga_core::{MatrixRoomId, Portal, PortalKey, RemoteRoomId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::tenants::{existing, tenant_id};
use crate::portals::{LinkError, LinkRequest, link};

/// Most ghosts one listing returns.
const MAX_GHOSTS: u32 = 500;

fn view(portal: &Portal) -> Value {
    json!({"kind": portal.key.kind, "remote_room": portal.key.room, "room_id": portal.room_id, "name": portal.name})
}

pub(crate) async fn list(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    existing(&state, &id).await?;
    let portals = state.store.portals(&id).await?;
    Ok(Json(json!({"portals": portals.iter().map(view).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewLink {
    kind: String,
    remote_room: String,
    room_id: String,
    name: Option<String>,
}

/// Links an existing Matrix room (the bridge bot must be invited) to a remote room.
pub(crate) async fn create(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
    body: Result<Json<NewLink>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let remote = RemoteRoomId::new(body.remote_room).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let room = MatrixRoomId::new(body.room_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = LinkRequest { tenant: &id, kind: &body.kind, remote: &remote, room: &room, name: body.name };
    let key =
        link(state.store.as_ref(), &state.host, state.matrix.as_ref(), request).await.map_err(|err| match err {
            LinkError::UnknownTenant(_) => ApiError::not_found(err.to_string()),
            LinkError::Kind(host) => host.into(),
            LinkError::NotARoom { .. } => ApiError::bad_request(err.to_string()),
            LinkError::Taken(_) => ApiError::conflict(err.to_string()),
            LinkError::BotCannotJoin { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "BOT_CANNOT_JOIN", err.to_string())
            }
            LinkError::Acl { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "BOT_CANNOT_SET_ACL", err.to_string()),
            LinkError::Encryption { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "ENCRYPTION_POLICY", err.to_string())
            }
            LinkError::EncryptionUnknown { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "ENCRYPTION_UNKNOWN", err.to_string())
            }
            LinkError::Store(store) => store.into(),
        })?;
    let portal = state.store.portal(&key).await?.ok_or_else(|| ApiError::not_found(format!("{key} vanished")))?;
    tracing::info!(portal = %key, "portal linked through the API");
    Ok((StatusCode::CREATED, Json(view(&portal))))
}

/// Unlinks a portal: the bridge stops bridging the room; the Matrix room
/// and its history stay.
pub(crate) async fn remove(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path((tenant, kind, room)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = tenant_id(&caller, &tenant)?;
    let kind = state.host.factory(&kind)?.kind();
    let room = RemoteRoomId::new(room).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let key = PortalKey::new(id, kind, room);
    let removed = state.router.unlink(&key).await.map_err(|err| {
        tracing::error!(portal = %key, error = %err, "unlinking failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE", "the store failed; try again")
    })?;
    if !removed {
        return Err(ApiError::not_found(format!("no portal {key}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct GhostQuery {
    search: Option<String>,
    limit: Option<u32>,
}

pub(crate) async fn ghosts(
    caller: Caller,
    State(state): State<Arc<ApiState>>,
    Path(tenant): Path<String>,
    query: Result<Query<GhostQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = tenant_id(&caller, &tenant)?;
    existing(&state, &id).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_GHOSTS);
    let search = query.search.as_deref().filter(|s| !s.is_empty());
    let ghosts = state.store.ghosts(&id, search, limit).await?;
    let shown: Vec<Value> = ghosts
        .iter()
        .map(|g| json!({"kind": g.kind, "remote_user": g.remote_user, "user_id": g.user_id, "display_name": g.display_name}))
        .collect();
    Ok(Json(json!({ "ghosts": shown })))
}
