//! A minimal Matrix client for tests, acting as a real user of the homeserver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// A logged-in Matrix user.
pub struct MatrixUser {
    /// Homeserver base URL.
    pub base: String,
    /// The user id.
    pub user_id: String,
    token: String,
    http: reqwest::Client,
    txn: AtomicU64,
    /// Transaction ids are scoped to the access token: clients sharing one need distinct ids.
    txn_prefix: String,
}

impl MatrixUser {
    /// Wraps an access token.
    pub fn new(base: &str, user_id: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            user_id: user_id.to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
            txn: AtomicU64::new(0),
            txn_prefix: brygga_harness::random_hex(6),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/_matrix/client/v3{path}", self.base);
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("homeserver reachable");
        let status = response.status().as_u16();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert!(status == 200, "{path} answered {status}: {value}");
        value
    }

    /// Resolves a room alias to a room id, if it exists.
    pub async fn resolve_alias(&self, alias: &str) -> Option<String> {
        let (status, value) = self.call(reqwest::Method::GET, &format!("/directory/room/{}", enc(alias)), None).await;
        (status == 200).then(|| value["room_id"].as_str().expect("room_id").to_owned())
    }

    /// Waits for an alias to exist and for the user's invite, then joins the
    /// room; returns its id. (Synapse creates the alias before the room is
    /// complete and before it sends the room's initial invites, so the first
    /// join may come too early.)
    pub async fn join_alias(&self, alias: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(room) = self.resolve_alias(alias).await {
                let (status, body) =
                    self.call(reqwest::Method::POST, &format!("/join/{}", enc(&room)), Some(json!({}))).await;
                if status == 200 {
                    return room;
                }
                // 403: not invited yet; 404: the alias exists before the room is known to the server.
                assert!(status == 403 || status == 404, "joining {alias} answered {status}: {body}");
            }
            assert!(tokio::time::Instant::now() < deadline, "could not join {alias} in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Joins a room by id.
    pub async fn join(&self, room: &str) {
        self.ok(reqwest::Method::POST, &format!("/join/{}", enc(room)), Some(json!({}))).await;
    }

    /// Sends an event; returns its id.
    pub async fn send(&self, room: &str, event_type: &str, content: Value) -> String {
        let txn = format!("t{}-{}", self.txn_prefix, self.txn.fetch_add(1, Ordering::Relaxed));
        let path = format!("/rooms/{}/send/{event_type}/{txn}", enc(room));
        let value = self.ok(reqwest::Method::PUT, &path, Some(content)).await;
        value["event_id"].as_str().expect("event_id").to_owned()
    }

    /// Sends a plain text message.
    pub async fn send_text(&self, room: &str, body: &str) -> String {
        self.send(room, "m.room.message", json!({"msgtype": "m.text", "body": body})).await
    }

    /// Redacts an event.
    pub async fn redact(&self, room: &str, event: &str) -> String {
        let txn = format!("r{}-{}", self.txn_prefix, self.txn.fetch_add(1, Ordering::Relaxed));
        let path = format!("/rooms/{}/redact/{}/{txn}", enc(room), enc(event));
        let value = self.ok(reqwest::Method::PUT, &path, Some(json!({}))).await;
        value["event_id"].as_str().expect("event_id").to_owned()
    }

    /// Every timeline event of a room the user can see, oldest first.
    pub async fn timeline(&self, room: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut from: Option<String> = None;
        loop {
            let mut path = format!("/rooms/{}/messages?dir=b&limit=1000", enc(room));
            if let Some(token) = &from {
                path.push_str(&format!("&from={}", enc(token)));
            }
            let page = self.ok(reqwest::Method::GET, &path, None).await;
            let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
            let done = chunk.is_empty() || page["end"].is_null();
            events.extend(chunk);
            if done {
                break;
            }
            from = page["end"].as_str().map(str::to_owned);
        }
        events.reverse();
        events
    }

    /// The `m.room.message` events of a room, oldest first.
    pub async fn messages(&self, room: &str) -> Vec<Value> {
        self.timeline(room).await.into_iter().filter(|e| e["type"] == "m.room.message").collect()
    }

    /// The text bodies of a room's messages, oldest first.
    pub async fn texts(&self, room: &str) -> Vec<String> {
        self.messages(room).await.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect()
    }

    /// Waits until a room has a message with `body`; returns the event.
    pub async fn wait_text(&self, room: &str, body: &str, timeout: Duration) -> Value {
        let has = |e: &Value| e["type"] == "m.room.message" && e["content"]["body"] == body;
        let timeline = self.wait_timeline(room, timeout, body, |t| t.iter().any(has)).await;
        timeline.into_iter().find(has).expect("found above")
    }

    /// Waits until `pred` holds for the room's timeline; returns the timeline.
    pub async fn wait_timeline(
        &self,
        room: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let timeline = self.timeline(room).await;
            if pred(&timeline) {
                return timeline;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what} in {room}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Uploads a file; returns its `mxc://` URI.
    pub async fn upload(&self, data: Vec<u8>, content_type: &str, name: &str) -> String {
        let url = format!("{}/_matrix/media/v3/upload?filename={}", self.base, enc(name));
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(data)
            .send()
            .await
            .expect("upload");
        assert!(response.status().is_success(), "upload answered {}", response.status());
        let value: Value = response.json().await.expect("upload answer");
        value["content_uri"].as_str().expect("content_uri").to_owned()
    }

    /// Downloads a file by `mxc://` URI (authenticated media).
    pub async fn download(&self, mxc: &str) -> Vec<u8> {
        let path = mxc.strip_prefix("mxc://").expect("an mxc URI");
        let url = format!("{}/_matrix/client/v1/media/download/{path}", self.base);
        let response = self.http.get(url).bearer_auth(&self.token).send().await.expect("download");
        assert!(response.status().is_success(), "download answered {}", response.status());
        response.bytes().await.expect("download body").to_vec()
    }

    /// Follows `/sync` until `find` finds something in a sync response.
    /// (Synapse caches identical initial syncs for a while, so the loop
    /// follows the since token rather than repeating the first request.)
    async fn sync_until<T>(&self, timeout: Duration, what: &str, find: impl Fn(&Value) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut since = String::new();
        loop {
            let path = if since.is_empty() {
                "/sync?timeout=0".to_owned()
            } else {
                format!("/sync?timeout=1000&since={since}")
            };
            let (status, sync) = self.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "sync failed: {sync}");
            if let Some(found) = find(&sync) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {what} within {timeout:?}");
            since = sync["next_batch"].as_str().unwrap_or_default().to_owned();
        }
    }

    /// Waits for an invite from `inviter`; returns the room id.
    pub async fn wait_invite(&self, inviter: &str, timeout: Duration) -> String {
        self.sync_until(timeout, &format!("invite from {inviter}"), |sync| {
            let invites = sync["rooms"]["invite"].as_object()?;
            invites.iter().find_map(|(room, state)| {
                let events = state["invite_state"]["events"].as_array()?;
                let invited = events.iter().any(|e| e["type"] == "m.room.member" && e["sender"] == inviter);
                invited.then(|| room.clone())
            })
        })
        .await
    }

    /// Waits for an ephemeral event (typing, receipt) in a joined room that
    /// `pred` accepts; returns it.
    pub async fn wait_ephemeral(&self, room: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        self.sync_until(timeout, &format!("such ephemeral event in {room}"), |sync| {
            sync["rooms"]["join"][room]["ephemeral"]["events"].as_array()?.iter().find(|e| pred(e)).cloned()
        })
        .await
    }

    /// Creates a direct chat with `peer`; returns its id.
    pub async fn create_dm(&self, peer: &str) -> String {
        let body = serde_json::json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [peer]});
        let value = self.ok(reqwest::Method::POST, "/createRoom", Some(body)).await;
        value["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Creates a private room inviting `invite`; returns its id.
    pub async fn create_room(&self, name: &str, invite: &[&str]) -> String {
        let body = serde_json::json!({"name": name, "preset": "private_chat", "invite": invite});
        let value = self.ok(reqwest::Method::POST, "/createRoom", Some(body)).await;
        value["room_id"].as_str().expect("room_id").to_owned()
    }

    /// Sets the user's display name.
    pub async fn set_display_name(&self, name: &str) {
        let path = format!("/profile/{}/displayname", enc(&self.user_id));
        self.ok(reqwest::Method::PUT, &path, Some(serde_json::json!({"displayname": name}))).await;
    }

    /// A user's profile.
    pub async fn profile(&self, user: &str) -> Value {
        self.ok(reqwest::Method::GET, &format!("/profile/{}", enc(user)), None).await
    }

    /// The access token, to build another client for the same user.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Raw client-server call for assertions on status codes.
    pub async fn raw(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, body).await
    }
}

/// The latest membership of `user` in a timeline.
pub fn membership_of<'a>(timeline: &'a [Value], user: &str) -> Option<&'a str> {
    timeline
        .iter()
        .filter(|e| e["type"] == "m.room.member" && e["state_key"] == user)
        .filter_map(|e| e["content"]["membership"].as_str())
        .next_back()
}

/// Percent-encodes a path segment.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
