//! The Rocket.Chat REST endpoints the adapter uses, typed.

use reqwest::Method;
use serde_json::{Value, json};

use crate::message::RcMessage;
use crate::rest::{Body, Creds, Rest, RestError};

/// Page size of history reads.
pub(crate) const HISTORY_PAGE: usize = 100;

/// A room's kind, which picks its REST family (`channels.*`, `groups.*`, `im.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoomKind {
    Channel,
    Group,
    Direct,
}

impl RoomKind {
    fn of(t: &str) -> Option<Self> {
        match t {
            "c" => Some(Self::Channel),
            "p" => Some(Self::Group),
            "d" => Some(Self::Direct),
            _ => None,
        }
    }

    fn history_path(self) -> &'static str {
        match self {
            Self::Channel => "channels.history",
            Self::Group => "groups.history",
            Self::Direct => "im.history",
        }
    }
}

/// A room's kind and name (`rooms.info`).
pub(crate) async fn room_info(rest: &Rest, creds: &Creds, rid: &str) -> Result<(RoomKind, Option<String>), RestError> {
    let body = rest.get("rooms.info", &[("roomId", rid)], creds).await?;
    let room = &body["room"];
    let kind = room["t"].as_str().and_then(RoomKind::of).ok_or_else(|| refused("rooms.info", "unknown room type"))?;
    let name = room["fname"].as_str().or_else(|| room["name"].as_str()).map(str::to_owned);
    Ok((kind, name))
}

/// Messages of a room after `oldest` (ISO), oldest first, in pages of
/// [`HISTORY_PAGE`] walking back from the newest.
pub(crate) async fn history(
    rest: &Rest,
    creds: &Creds,
    kind: RoomKind,
    rid: &str,
    oldest: &str,
) -> Result<Vec<Value>, RestError> {
    let count = HISTORY_PAGE.to_string();
    let mut latest: Option<String> = None;
    let mut all: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    loop {
        let mut query = vec![("roomId", rid), ("oldest", oldest), ("count", count.as_str())];
        if let Some(latest) = &latest {
            query.push(("latest", latest.as_str()));
            query.push(("inclusive", "true"));
        }
        let body = rest.get(kind.history_path(), &query, creds).await?;
        let page = body["messages"].as_array().cloned().unwrap_or_default();
        let full = page.len() >= HISTORY_PAGE;
        let mut new = 0;
        for message in page {
            let id = message["_id"].as_str().unwrap_or_default().to_owned();
            if seen.insert(id) {
                new += 1;
                all.push(message);
            }
        }
        // Pages are newest first; continue from the oldest of this page.
        let oldest_here = all.iter().filter_map(|m| crate::time::millis(&m["ts"])).min();
        match oldest_here {
            Some(ms) if full && new > 0 => latest = Some(crate::time::iso(ms)),
            _ => break,
        }
    }
    all.sort_by_key(|m| crate::time::millis(&m["ts"]).unwrap_or(i64::MIN));
    Ok(all)
}

/// `chat.sendMessage`: the message as stored.
pub(crate) async fn send_message(rest: &Rest, creds: &Creds, message: Value) -> Result<Value, RestError> {
    let body = rest.post("chat.sendMessage", &json!({ "message": message }), Some(creds)).await?;
    Ok(body["message"].clone())
}

/// `chat.getMessage`: the message, or `None` when it does not exist.
pub(crate) async fn get_message(rest: &Rest, creds: &Creds, id: &str) -> Result<Option<RcMessage>, RestError> {
    match rest.get("chat.getMessage", &[("msgId", id)], creds).await {
        Ok(body) => Ok(RcMessage::from_value(&body["message"]).ok()),
        Err(RestError::Refused { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// `users.setStatus` of the caller.
pub(crate) async fn set_status(rest: &Rest, creds: &Creds, status: &str, message: &str) -> Result<(), RestError> {
    rest.post("users.setStatus", &json!({"status": status, "message": message}), Some(creds)).await.map(drop)
}

/// `chat.syncMessages`: messages of `rid` changed since `last_update`
/// (edited, reacted to) and the ids of those deleted.
pub(crate) async fn sync_messages(
    rest: &Rest,
    creds: &Creds,
    rid: &str,
    last_update: &str,
) -> Result<(Vec<Value>, Vec<String>), RestError> {
    let body = rest.get("chat.syncMessages", &[("roomId", rid), ("lastUpdate", last_update)], creds).await?;
    let updated = body["result"]["updated"].as_array().cloned().unwrap_or_default();
    let deleted = body["result"]["deleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["_id"].as_str().map(str::to_owned))
        .collect();
    Ok((updated, deleted))
}

/// `chat.update`.
pub(crate) async fn update(rest: &Rest, creds: &Creds, rid: &str, id: &str, text: &str) -> Result<(), RestError> {
    rest.post("chat.update", &json!({"roomId": rid, "msgId": id, "text": text}), Some(creds)).await.map(drop)
}

/// `chat.delete`.
pub(crate) async fn delete(rest: &Rest, creds: &Creds, rid: &str, id: &str) -> Result<(), RestError> {
    rest.post("chat.delete", &json!({"roomId": rid, "msgId": id}), Some(creds)).await.map(drop)
}

/// `chat.react` with an explicit direction, so a retry cannot toggle it back.
pub(crate) async fn react(rest: &Rest, creds: &Creds, id: &str, emoji: &str, add: bool) -> Result<(), RestError> {
    rest.post("chat.react", &json!({"messageId": id, "emoji": emoji, "shouldReact": add}), Some(creds)).await.map(drop)
}

/// `rooms.media/{rid}`: uploads a file; returns its id.
pub(crate) async fn upload(
    rest: &Rest,
    creds: &Creds,
    rid: &str,
    name: &str,
    mime: &str,
    data: &[u8],
) -> Result<String, RestError> {
    let path = format!("rooms.media/{rid}");
    let body = rest.call(Method::POST, &path, &[], Body::File { name, mime, data }, Some(creds)).await?;
    body["file"]["_id"].as_str().map(str::to_owned).ok_or_else(|| refused("rooms.media", "no file id"))
}

/// `rooms.mediaConfirm/{rid}/{fileId}`: posts the uploaded file as a message.
pub(crate) async fn confirm_media(
    rest: &Rest,
    creds: &Creds,
    rid: &str,
    file_id: &str,
    extra: Value,
) -> Result<Value, RestError> {
    let body = rest.post(&format!("rooms.mediaConfirm/{rid}/{file_id}"), &extra, Some(creds)).await?;
    Ok(body["message"].clone())
}

/// `im.create`: the id of the direct chat with `username`.
pub(crate) async fn create_direct(rest: &Rest, creds: &Creds, username: &str) -> Result<String, RestError> {
    let body = rest.post("im.create", &json!({"username": username}), Some(creds)).await?;
    let room = &body["room"];
    room["_id"]
        .as_str()
        .or_else(|| room["rid"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| refused("im.create", "no room id"))
}

/// `login` with a username and password: the session's credentials.
pub(crate) async fn login(rest: &Rest, username: &str, password: &str) -> Result<Creds, RestError> {
    let body = rest.post("login", &json!({"user": username, "password": password}), None).await?;
    let data = &body["data"];
    match (data["userId"].as_str(), data["authToken"].as_str()) {
        (Some(user_id), Some(token)) => Ok(Creds { user_id: user_id.into(), token: token.into() }),
        _ => Err(refused("login", "no credentials in the answer")),
    }
}

/// `me`: the username of the credentials' user.
pub(crate) async fn me(rest: &Rest, creds: &Creds) -> Result<String, RestError> {
    let body = rest.get("me", &[], creds).await?;
    body["username"].as_str().map(str::to_owned).ok_or_else(|| refused("me", "no username"))
}

/// `users.create`: a new user's id.
pub(crate) async fn create_user(rest: &Rest, creds: &Creds, user: Value) -> Result<String, RestError> {
    let body = rest.post("users.create", &user, Some(creds)).await?;
    body["user"]["_id"].as_str().map(str::to_owned).ok_or_else(|| refused("users.create", "no user id"))
}

/// `users.info` by username: the user's id, or `None` when there is no such user.
pub(crate) async fn user_id(rest: &Rest, creds: &Creds, username: &str) -> Result<Option<String>, RestError> {
    match rest.get("users.info", &[("username", username)], creds).await {
        Ok(body) => Ok(body["user"]["_id"].as_str().map(str::to_owned)),
        Err(RestError::Refused { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// `users.createToken`: a token for another user (admin only).
pub(crate) async fn create_token(rest: &Rest, creds: &Creds, user_id: &str) -> Result<Creds, RestError> {
    let mut request = json!({"userId": user_id});
    if let Some(secret) = &rest.config().create_tokens_secret {
        request["secret"] = json!(secret.0);
    }
    let body = rest.post("users.createToken", &request, Some(creds)).await?;
    let data = &body["data"];
    match (data["userId"].as_str(), data["authToken"].as_str()) {
        (Some(user_id), Some(token)) => Ok(Creds { user_id: user_id.into(), token: token.into() }),
        _ => Err(refused("users.createToken", "no token in the answer")),
    }
}

/// `channels.join`: the bot joins a public channel it is to listen in.
pub(crate) async fn join_channel(rest: &Rest, creds: &Creds, rid: &str) -> Result<(), RestError> {
    rest.post("channels.join", &json!({"roomId": rid}), Some(creds)).await.map(drop)
}

/// `channels.invite` / `groups.invite`: adds a user to a channel or group (the bot must be allowed to).
pub(crate) async fn invite(
    rest: &Rest,
    creds: &Creds,
    kind: RoomKind,
    rid: &str,
    user_id: &str,
) -> Result<(), RestError> {
    let path = match kind {
        RoomKind::Channel => "channels.invite",
        RoomKind::Group => "groups.invite",
        RoomKind::Direct => return Ok(()),
    };
    rest.post(path, &json!({"roomId": rid, "userId": user_id}), Some(creds)).await.map(drop)
}

/// `rooms.leave`: the user leaves a room.
pub(crate) async fn leave(rest: &Rest, creds: &Creds, rid: &str) -> Result<(), RestError> {
    rest.post("rooms.leave", &json!({"roomId": rid}), Some(creds)).await.map(drop)
}

fn refused(path: &str, why: &str) -> RestError {
    RestError::Refused { path: path.into(), status: 200, error: why.into(), error_type: "unexpected-answer".into() }
}
