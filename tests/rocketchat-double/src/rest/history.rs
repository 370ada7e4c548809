//! `channels.history`, `groups.history` and `im.history`: newest first, bounded
//! by `oldest`/`latest` (exclusive unless `inclusive=true`), paged by `count`/`offset`.

use super::{ApiResult, pagination, query_object, success, text};
use crate::error::ApiError;
use crate::model::RoomType;
use crate::server::Shared;
use crate::time::{Format, parse_iso};
use crate::workspace::HistoryQuery;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

type Pairs = Query<Vec<(String, String)>>;

/// `GET chat.syncMessages?roomId=&lastUpdate=`: what changed in a room
/// since then (the `lastUpdate` form; cursors are not modelled).
pub async fn sync_messages(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    let me = s.authenticate(&headers)?;
    let query = query_object(pairs);
    s.validate("GET chat.syncMessages", "isChatSyncMessagesProps", &query).await?;
    let rid = text(&query, "roomId").unwrap_or_default().to_owned();
    let since = text(&query, "lastUpdate").and_then(parse_iso).ok_or_else(|| {
        ApiError::meteor("error-param-required", "The required \"lastUpdate\" query param is missing or invalid.")
    })?;
    let result = s.with(|ws| {
        let readable = ws.is_member(&rid, &me.id) || ws.room(&rid).is_some_and(|r| r.kind == RoomType::Channel);
        if !readable {
            return None;
        }
        let (updated, deleted) = ws.sync(&rid, since);
        let updated: Vec<Value> = updated.iter().map(|m| m.render(Format::Rest)).collect();
        let deleted: Vec<Value> =
            deleted.iter().map(|(id, at)| json!({"_id": id, "_deletedAt": Format::Rest.date(*at)})).collect();
        Some(json!({"updated": updated, "deleted": deleted, "cursor": {"next": null, "previous": null}}))
    });
    let result = result.ok_or_else(|| ApiError::meteor("error-not-allowed", "Not allowed"))?;
    Ok(success(json!({ "result": result })))
}

async fn history(
    s: &Shared,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    kind: RoomType,
    endpoint: &str,
    validator: &str,
    what: &str,
) -> ApiResult {
    let me = s.authenticate(headers)?;
    let query = query_object(pairs);
    s.validate(endpoint, validator, &query).await?;
    let date = |key: &str| -> Result<Option<i64>, ApiError> {
        match text(&query, key) {
            None => Ok(None),
            Some(v) => parse_iso(v).map(Some).ok_or_else(|| {
                ApiError::meteor("error-invalid-date", &format!("The \"{key}\" query parameter must be a valid date."))
            }),
        }
    };
    let (offset, count) = pagination(&query);
    let history = HistoryQuery {
        oldest: date("oldest")?,
        latest: date("latest")?,
        inclusive: text(&query, "inclusive") == Some("true"),
        count,
        offset,
        show_thread_messages: text(&query, "showThreadMessages") != Some("false"),
    };
    let rid = text(&query, "roomId").unwrap_or_default();
    let messages: Option<Vec<Value>> = s.with(|ws| {
        ws.room(rid).filter(|r| r.kind == kind && (kind == RoomType::Channel || ws.is_member(rid, &me.id)))?;
        Some(ws.history(rid, &history).into_iter().map(|m| m.render(Format::Rest)).collect())
    });
    let not_found = format!("The required \"roomId\" or \"roomName\" param provided does not match any {what}");
    let messages = messages.ok_or_else(|| ApiError::meteor("error-room-not-found", &not_found))?;
    Ok(success(json!({ "messages": messages })))
}

/// `GET channels.history?roomId=&oldest=&latest=&inclusive=&count=&offset=`.
pub async fn channels(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    history(&s, &headers, pairs, RoomType::Channel, "GET channels.history", "isChannelsHistoryProps", "channel").await
}

/// `GET groups.history?roomId=...`.
pub async fn groups(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    history(&s, &headers, pairs, RoomType::Group, "GET groups.history", "isGroupsHistoryProps", "group").await
}

/// `GET im.history?roomId=...`.
pub async fn im(State(s): State<Arc<Shared>>, headers: HeaderMap, Query(pairs): Pairs) -> ApiResult {
    history(&s, &headers, pairs, RoomType::Direct, "GET im.history", "isDmHistoryProps", "direct message").await
}
