//! `GET /teams/{id}`, `GET /teams/{t}/channels/{c}` and `GET /chats/{id}`: names for portals.

use super::{Params, conversation};
use crate::error::GraphError;
use crate::state::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

const TEAM_ROLES: &[&str] =
    &["Team.ReadBasic.All", "TeamSettings.Read.All", "Group.Read.All", "ChannelMessage.Read.All"];
const TEAM_SCOPES: &[&str] =
    &["Team.ReadBasic.All", "TeamSettings.Read.All", "Group.Read.All", "ChannelMessage.Read.All"];
const CHANNEL_ROLES: &[&str] = &["ChannelSettings.Read.All", "Channel.ReadBasic.All", "ChannelMessage.Read.All"];
const CHANNEL_SCOPES: &[&str] = &["ChannelSettings.Read.All", "Channel.ReadBasic.All", "ChannelMessage.Read.All"];

/// `GET /teams/{team}`.
pub async fn team(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    caller.require(TEAM_ROLES, TEAM_SCOPES)?;
    let base = s.graph_base();
    s.with(|w| {
        let team = w.tenant(caller.tenant())?.teams.get(&id).ok_or_else(|| GraphError::not_found("Team"))?;
        if let Some(user) = caller.user()
            && !team.members.iter().any(|m| m.user == user)
        {
            return Err(GraphError::forbidden("The user is not a member of this team."));
        }
        Ok(Json(json!({
            "@odata.context": format!("{base}/$metadata#teams/$entity"),
            "id": id,
            "displayName": team.name,
            "description": null,
            "isArchived": false,
            "tenantId": caller.tenant(),
        })))
    })
}

/// `GET /teams/{team}/channels/{channel}`.
pub async fn channel(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    caller.require(CHANNEL_ROLES, CHANNEL_SCOPES)?;
    let base = s.graph_base();
    s.with(|w| {
        conversation(w, &caller, &p)?;
        let team = &w.tenant(caller.tenant())?.teams[&p["team"]];
        Ok(Json(json!({
            "@odata.context": format!("{base}/$metadata#teams('{}')/channels/$entity", p["team"]),
            "id": p["channel"],
            "displayName": team.channels[&p["channel"]],
            "description": null,
            "membershipType": "standard",
            "tenantId": caller.tenant(),
            "webUrl": format!("https://teams.microsoft.com/l/channel/{}/?groupId={}&tenantId={}", p["channel"], p["team"], caller.tenant()),
        })))
    })
}

/// `GET /chats/{chat}`.
pub async fn chat(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    caller.require(
        &["Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All"],
        &["Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite"],
    )?;
    let base = s.graph_base();
    s.with(|w| {
        conversation(w, &caller, &p)?;
        let chat = &w.tenant(caller.tenant())?.chats[&p["chat"]];
        Ok(Json(json!({
            "@odata.context": format!("{base}/$metadata#chats/$entity"),
            "id": p["chat"],
            "topic": chat.topic,
            "chatType": chat.chat_type,
            "tenantId": caller.tenant(),
            "webUrl": format!("https://teams.microsoft.com/l/chat/{}/0?tenantId={}", p["chat"], caller.tenant()),
        })))
    })
}
