//! `rooms.info`, `im.create`, the `*.members` lists, `subscriptions.get` and invites.

use super::{ApiResult, json_body, pagination, query_object, success, text};
use crate::error::ApiError;
use crate::model::RoomType;
use crate::server::Shared;
use crate::time::Format;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

type Pairs = Query<Vec<(String, String)>>;

/// `GET rooms.info?roomId=`.
pub async fn info(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let query = query_object(pairs);
    s.validate("GET rooms.info", "isRoomsInfoProps", &query).await?;
    let rid = text(&query, "roomId").unwrap_or_default();
    let room = s.with(|ws| {
        let room = ws.room(rid).filter(|r| r.kind == RoomType::Channel || ws.is_member(rid, &me.id))?;
        Some(ws.render_room(room, Format::Rest))
    });
    Ok(success(json!({ "room": room.ok_or_else(|| ApiError::failure("not-allowed"))? })))
}

/// `POST im.create` with `{username}` (or `{usernames: "a,b"}` for one other user).
pub async fn im_create(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST im.create", "isDmCreateProps", &body).await?;
    let names: Vec<String> = match (text(&body, "username"), text(&body, "usernames")) {
        (Some(one), _) => vec![one.to_owned()],
        (None, Some(list)) => list.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect(),
        _ => Vec::new(),
    };
    let [other] = names.as_slice() else {
        return Err(ApiError::meteor(
            "error-invalid-arguments",
            "Group direct messages are not supported by this workspace",
        ));
    };
    let room = s.with(|ws| {
        let other = ws.user_by_username(other)?.id.clone();
        let rid = ws.direct_room(&me.id, &other);
        let mut doc = ws.render_room(ws.room(&rid)?, Format::Rest);
        doc["rid"] = json!(rid);
        Some(doc)
    });
    let room = room.ok_or_else(|| ApiError::meteor("error-invalid-user", "Invalid user"))?;
    Ok(success(json!({ "room": room })))
}

/// Lists the members of a room of `kind` named by `roomId`.
async fn members(
    s: &Shared,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    kind: RoomType,
    endpoint: &str,
    validator: Option<&str>,
) -> ApiResult {
    let me = s.authenticate(headers)?;
    let query = query_object(pairs);
    if let Some(validator) = validator {
        s.validate(endpoint, validator, &query).await?;
    }
    let rid = text(&query, "roomId").unwrap_or_default();
    let (offset, count) = pagination(&query);
    let all: Option<Vec<Value>> = s.with(|ws| {
        let room =
            ws.room(rid).filter(|r| r.kind == kind && (kind == RoomType::Channel || ws.is_member(rid, &me.id)))?;
        let users = room.members.iter().filter_map(|m| ws.user(m));
        Some(
            users
                .map(|u| json!({ "_id": u.id, "username": u.username, "name": u.name, "status": u.status.as_str() }))
                .collect(),
        )
    });
    let all = all.ok_or_else(|| {
        ApiError::meteor(
            "error-room-not-found",
            "The required \"roomId\" or \"roomName\" param provided does not match any room",
        )
    })?;
    let page: Vec<&Value> = all.iter().skip(offset).take(count).collect();
    Ok(success(json!({ "members": page, "count": page.len(), "offset": offset, "total": all.len() })))
}

/// `GET channels.members?roomId=` (rest-typings publishes no validator for it).
pub async fn channel_members(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    members(&s, &headers, pairs, RoomType::Channel, "GET channels.members", None).await
}

/// `GET groups.members?roomId=`.
pub async fn group_members(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    members(&s, &headers, pairs, RoomType::Group, "GET groups.members", Some("isGroupsMembersProps")).await
}

/// `GET im.members?roomId=`.
pub async fn im_members(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    members(&s, &headers, pairs, RoomType::Direct, "GET im.members", Some("isDmMemberProps")).await
}

/// `GET subscriptions.get`: all of the caller's subscriptions.
pub async fn subscriptions(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let query = query_object(pairs);
    s.validate("GET subscriptions.get", "isSubscriptionsGetProps", &query).await?;
    let subs: Vec<Value> = s.with(|ws| {
        let mine: Vec<String> = ws.rooms().filter(|r| r.members.contains(&me.id)).map(|r| r.id.clone()).collect();
        mine.iter().map(|rid| ws.render_subscription(rid, &me.id, Format::Rest)).collect()
    });
    Ok(success(json!({ "update": subs, "remove": [] })))
}

async fn invite(
    s: &Shared,
    headers: &HeaderMap,
    body: Bytes,
    kind: RoomType,
    endpoint: &str,
    validator: &str,
    key: &str,
) -> ApiResult {
    let me = s.authenticate(headers)?;
    let body = json_body(&body)?;
    s.validate(endpoint, validator, &body).await?;
    let rid = text(&body, "roomId").unwrap_or_default();
    let users: Vec<String> = match (text(&body, "userId"), body.get("userIds").and_then(Value::as_array)) {
        (Some(one), _) => vec![one.to_owned()],
        (None, Some(many)) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let room = s.with(|ws| {
        let allowed = ws.room(rid).is_some_and(|r| r.kind == kind) && ws.is_member(rid, &me.id);
        if !allowed {
            return Err(ApiError::meteor(
                "error-room-not-found",
                "The required \"roomId\" or \"roomName\" param provided does not match any room",
            ));
        }
        for user in &users {
            ws.add_member(rid, user, Some(&me.id))?;
        }
        Ok(ws.room(rid).map(|r| ws.render_room(r, Format::Rest)))
    })?;
    let mut body = serde_json::Map::new();
    body.insert(key.to_owned(), room.unwrap_or(Value::Null));
    Ok(success(Value::Object(body)))
}

/// `POST channels.invite` with `{roomId, userId}`.
pub async fn channel_invite(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    invite(&s, &headers, body, RoomType::Channel, "POST channels.invite", "isChannelsInviteProps", "channel").await
}

/// `POST groups.invite` with `{roomId, userId}`.
pub async fn group_invite(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    invite(&s, &headers, body, RoomType::Group, "POST groups.invite", "isGroupsInviteProps", "group").await
}

/// `POST channels.join` with `{roomId}`: posts `uj`.
pub async fn channel_join(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST channels.join", "isChannelsJoinProps", &body).await?;
    let rid = text(&body, "roomId").unwrap_or_default();
    let channel = s.with(|ws| {
        if !ws.room(rid).is_some_and(|r| r.kind == RoomType::Channel) {
            return Err(ApiError::meteor(
                "error-room-not-found",
                "The required \"roomId\" or \"roomName\" param provided does not match any channel",
            ));
        }
        ws.add_member(rid, &me.id, None)?;
        Ok(ws.room(rid).map(|r| ws.render_room(r, Format::Rest)))
    })?;
    Ok(success(json!({ "channel": channel })))
}

/// `POST rooms.leave` with `{roomId}` (no published validator; checked by hand): posts `ul`.
pub async fn leave(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    let well_formed = body.as_object().is_some_and(|o| o.len() == 1 && text(&body, "roomId").is_some());
    if !well_formed {
        let errors = json!([{ "message": "must have required property 'roomId' and nothing else" }]);
        return Err(s.record_violation(
            "POST rooms.leave",
            "rooms.leave body {roomId} (checked by the double)",
            &body,
            errors,
        ));
    }
    let rid = text(&body, "roomId").unwrap_or_default();
    s.with(|ws| {
        if ws.room(rid).is_none_or(|r| r.kind == RoomType::Direct) {
            return Err(ApiError::meteor("error-not-allowed", "Not allowed"));
        }
        ws.remove_member(rid, &me.id)
    })?;
    Ok(success(json!({})))
}
