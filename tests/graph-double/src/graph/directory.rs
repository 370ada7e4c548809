//! Members of channels and chats, users, and presence.

use super::{Params, conversation};
use crate::error::GraphError;
use crate::state::Shared;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

/// The most ids one `getPresencesByUserId` call takes.
pub const MAX_PRESENCE_IDS: usize = 650;

/// `GET /teams/{t}/channels/{c}/members` and `GET /chats/{id}/members`: `aadUserConversationMember`s.
pub async fn members(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    s.with(|w| {
        let c = conversation(w, &caller, &p)?;
        match c {
            crate::model::Conversation::Channel { .. } => caller.require(
                &["ChannelMember.Read.All", "ChannelMember.ReadWrite.All"],
                &["ChannelMember.Read.All", "ChannelMember.ReadWrite.All"],
            )?,
            crate::model::Conversation::Chat { .. } => caller.require(
                &["ChatMember.Read.All", "ChatMember.ReadWrite.All", "Chat.ReadBasic.All", "Chat.Read.All"],
                &["ChatMember.Read", "ChatMember.ReadWrite", "Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite"],
            )?,
        }
        let value: Vec<Value> = w
            .members(&c)
            .iter()
            .map(|m| {
                let user = w.user(c.tenant(), &m.user);
                json!({
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "id": m.membership_id,
                    "roles": m.roles,
                    "displayName": user.map(|u| u.public.display_name.clone()),
                    "visibleHistoryStartDateTime": crate::time::iso(m.since),
                    "userId": m.user,
                    "email": user.map(|u| u.public.user_principal_name.clone()),
                    "tenantId": c.tenant(),
                })
            })
            .collect();
        Ok(Json(crate::render::collection("#Collection(microsoft.graph.conversationMember)", value, None)))
    })
}

/// `GET /users/{id}` (by id or user principal name), with the default property set.
pub async fn user(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    caller.require(
        &["User.Read.All", "User.ReadBasic.All", "Directory.Read.All"],
        &["User.Read", "User.ReadBasic.All", "User.Read.All"],
    )?;
    let base = s.graph_base();
    s.with(|w| {
        let t = w.tenant(caller.tenant())?;
        let u = t.users.values().find(|u| u.public.id == id || u.public.user_principal_name.eq_ignore_ascii_case(&id));
        let u = u.ok_or_else(|| {
            GraphError::new(
                axum::http::StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            )
        })?;
        Ok(Json(user_entity(&base, &u.public)))
    })
}

/// `GET /me`: the signed-in user of a delegated token (app-only tokens are refused, as by Graph).
pub async fn me(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    let Some(user) = caller.user().map(str::to_owned) else {
        return Err(GraphError::bad_request("/me request is only valid with delegated authentication flow."));
    };
    caller.require(&[], &["User.Read", "User.ReadBasic.All", "User.Read.All"])?;
    let base = s.graph_base();
    s.with(|w| {
        let t = w.tenant(caller.tenant())?;
        let u = t.users.get(&user).ok_or_else(|| {
            GraphError::new(
                axum::http::StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                "The signed-in user is gone.",
            )
        })?;
        Ok(Json(user_entity(&base, &u.public)))
    })
}

/// A `microsoft.graph.user` with the default property set.
fn user_entity(base: &str, u: &crate::model::TestUser) -> Value {
    let (given, surname) = u.display_name.split_once(' ').unwrap_or((&u.display_name, ""));
    json!({
        "@odata.context": format!("{base}/$metadata#users/$entity"),
        "businessPhones": [],
        "displayName": u.display_name,
        "givenName": given,
        "jobTitle": null,
        "mail": u.user_principal_name,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "surname": surname,
        "userPrincipalName": u.user_principal_name,
        "id": u.id,
    })
}

/// `POST /communications/getPresencesByUserId` with `{"ids": [...]}` (at most 650).
pub async fn presences(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, GraphError> {
    let caller = s.caller(&headers)?;
    caller.require(&["Presence.Read.All"], &["Presence.Read.All"])?;
    let ids =
        body["ids"].as_array().ok_or_else(|| GraphError::bad_request("The request body needs an 'ids' array."))?;
    if ids.is_empty() || ids.len() > MAX_PRESENCE_IDS {
        return Err(GraphError::bad_request(format!("The number of ids must be between 1 and {MAX_PRESENCE_IDS}.")));
    }
    let base = s.graph_base();
    s.with(|w| {
        let t = w.tenant(caller.tenant())?;
        let value: Vec<Value> = ids
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|id| t.users.get(id))
            .map(|u| json!({ "id": u.public.id, "availability": u.availability, "activity": u.activity, "statusMessage": null }))
            .collect();
        Ok(Json(json!({ "@odata.context": format!("{base}/$metadata#Collection(microsoft.graph.presence)"), "value": value })))
    })
}
