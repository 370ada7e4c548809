//! `chat.*` endpoints.

use super::{ApiResult, json_body, query_object, success, text};
use crate::error::ApiError;
use crate::server::Shared;
use crate::time::Format;
use crate::workspace::SendRequest;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Builds a [`SendRequest`] from a `message` object as `chat.sendMessage` takes it.
pub fn send_request(message: &Value) -> SendRequest {
    let opt = |k: &str| text(message, k).map(str::to_owned);
    let mut extra = Map::new();
    for key in ["tshow", "customFields", "groupable", "blocks"] {
        if let Some(v) = message.get(key).filter(|v| !v.is_null()) {
            extra.insert(key.into(), v.clone());
        }
    }
    SendRequest {
        id: opt("_id"),
        rid: opt("rid").unwrap_or_default(),
        msg: opt("msg").unwrap_or_default(),
        tmid: opt("tmid"),
        t: None,
        alias: opt("alias"),
        avatar: opt("avatar"),
        emoji: opt("emoji"),
        attachments: message.get("attachments").and_then(Value::as_array).cloned().unwrap_or_default(),
        extra,
    }
}

/// `POST chat.sendMessage` with `{message: {_id?, rid, msg, tmid?, alias?, avatar?, attachments?}}`.
pub async fn send_message(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST chat.sendMessage", "isChatSendMessageProps", &body).await?;
    if body["message"].get("t").is_some_and(|t| !t.is_null()) {
        return Err(ApiError::failure("Cannot send system messages using 'chat.sendMessage'"));
    }
    let sent = s.with(|ws| ws.send(&me.id, send_request(&body["message"]), Vec::new()))?;
    Ok(success(json!({ "message": sent.render(Format::Rest) })))
}

/// `POST chat.update` with `{roomId, msgId, text}`.
pub async fn update(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST chat.update", "isChatUpdateProps", &body).await?;
    let (rid, id) = (text(&body, "roomId").unwrap_or_default(), text(&body, "msgId").unwrap_or_default());
    let Some(new_text) = text(&body, "text") else {
        return Err(ApiError::meteor("error-not-allowed", "Encrypted edits are not supported by this workspace"));
    };
    let updated = s.with(|ws| ws.update(&me.id, rid, id, new_text))?;
    Ok(success(json!({ "message": updated.render(Format::Rest) })))
}

/// `POST chat.delete` with `{roomId, msgId}`.
pub async fn delete(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST chat.delete", "isChatDeleteProps", &body).await?;
    let (Some(rid), Some(id)) = (text(&body, "roomId"), text(&body, "msgId")) else {
        return Err(ApiError::failure("No message found with the id of \"undefined\"."));
    };
    let removed = s.with(|ws| ws.delete(&me.id, rid, id))?;
    let ts = chrono::Utc::now().timestamp_millis().to_string();
    Ok(success(
        json!({ "_id": removed.id, "ts": ts, "message": { "_id": removed.id, "rid": removed.rid, "u": removed.u } }),
    ))
}

/// `POST chat.react` with `{messageId, emoji|reaction, shouldReact?}`.
pub async fn react(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let body = json_body(&body)?;
    s.validate("POST chat.react", "isChatReactProps", &body).await?;
    let id = text(&body, "messageId").unwrap_or_default();
    let emoji = text(&body, "emoji").or_else(|| text(&body, "reaction")).unwrap_or_default();
    if emoji.is_empty() {
        return Err(ApiError::meteor("error-emoji-param-not-provided", "The required \"emoji\" param is missing."));
    }
    let should = body.get("shouldReact").and_then(Value::as_bool);
    s.with(|ws| ws.react(&me.id, id, emoji, should))?;
    Ok(success(json!({})))
}

/// `GET chat.getMessage?msgId=`.
pub async fn get_message(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let query = query_object(pairs);
    s.validate("GET chat.getMessage", "isChatGetMessageProps", &query).await?;
    let id = text(&query, "msgId").unwrap_or_default();
    let found = s.with(|ws| {
        let m = ws.message(id)?;
        let readable =
            ws.is_member(&m.rid, &me.id) || ws.room(&m.rid).is_some_and(|r| r.kind == crate::model::RoomType::Channel);
        readable.then(|| m.render(Format::Rest))
    });
    match found {
        Some(message) => Ok(success(json!({ "message": message }))),
        None => Err(ApiError { status: axum::http::StatusCode::BAD_REQUEST, body: json!({ "success": false }) }),
    }
}
