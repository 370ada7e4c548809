//! The REST API (`/api/v1/...`): routes and shared request/response helpers.
//! Each handler authenticates, validates its body or query with the
//! rest-typings validator the real route uses, then acts on the workspace.

mod auth;
pub(crate) mod chat;
mod history;
mod media;
mod rooms;
mod users;

use crate::error::ApiError;
use crate::server::Shared;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A handler's result: a success response or a Rocket.Chat error.
pub type ApiResult = Result<Response, ApiError>;

/// All routes of the double.
pub fn router(_shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/info", get(auth::info))
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/users.info", get(users::info))
        .route("/api/v1/users.create", post(users::create))
        .route("/api/v1/users.createToken", post(users::create_token))
        .route("/api/v1/users.getPresence", get(users::presence))
        .route("/api/v1/users.setStatus", post(users::set_status))
        .route("/api/v1/users.list", get(users::list))
        .route("/api/v1/chat.sendMessage", post(chat::send_message))
        .route("/api/v1/chat.update", post(chat::update))
        .route("/api/v1/chat.delete", post(chat::delete))
        .route("/api/v1/chat.react", post(chat::react))
        .route("/api/v1/chat.getMessage", get(chat::get_message))
        .route("/api/v1/chat.syncMessages", get(history::sync_messages))
        .route("/api/v1/rooms.info", get(rooms::info))
        .route("/api/v1/im.create", post(rooms::im_create))
        .route("/api/v1/channels.members", get(rooms::channel_members))
        .route("/api/v1/groups.members", get(rooms::group_members))
        .route("/api/v1/im.members", get(rooms::im_members))
        .route("/api/v1/subscriptions.get", get(rooms::subscriptions))
        .route("/api/v1/channels.invite", post(rooms::channel_invite))
        .route("/api/v1/groups.invite", post(rooms::group_invite))
        .route("/api/v1/channels.join", post(rooms::channel_join))
        .route("/api/v1/rooms.leave", post(rooms::leave))
        .route("/api/v1/channels.history", get(history::channels))
        .route("/api/v1/groups.history", get(history::groups))
        .route("/api/v1/im.history", get(history::im))
        .route(
            "/api/v1/rooms.media/{rid}",
            post(media::upload).layer(DefaultBodyLimit::max(media::MAX_FILE_SIZE + 1_048_576)),
        )
        .route("/api/v1/rooms.mediaConfirm/{rid}/{file_id}", post(media::confirm))
        .route("/file-upload/{file_id}/{name}", get(media::download))
        .route("/websocket", get(crate::realtime::upgrade))
        .fallback(|| async { ApiError::not_found() })
}

/// `API.v1.success(body)`: 200 with `success: true` added.
pub fn success(mut body: Value) -> Response {
    if let Value::Object(map) = &mut body {
        map.insert("success".into(), Value::Bool(true));
    }
    axum::Json(body).into_response()
}

/// A JSON request body; an empty body reads as `{}`, as the real body parser does.
pub fn json_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|_| ApiError::failure("The request body is not valid JSON"))
}

/// Query parameters as the object the router validates (repeated keys become arrays).
pub fn query_object(pairs: Vec<(String, String)>) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(existing) => *existing = Value::Array(vec![existing.take(), Value::String(value)]),
            None => {
                map.insert(key, Value::String(value));
            }
        }
    }
    Value::Object(map)
}

/// A string field of a JSON object.
pub fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// `getPaginationItems`: `count` defaults to 50 and is capped at 100; `offset` defaults to 0.
pub fn pagination(query: &Value) -> (usize, usize) {
    let number = |key: &str| text(query, key).and_then(|v| v.parse::<usize>().ok());
    let count = number("count").unwrap_or(50).min(100);
    (number("offset").unwrap_or(0), count)
}
