//! An instant homeserver: answers the client-server calls the bridge makes at
//! once, records when each timed send arrives and counts calls per endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::stats::Probe;

/// The endpoints the bridge calls, in the order counters are printed.
pub const ENDPOINTS: [&str; 10] =
    ["register", "directory", "createRoom", "join", "invite", "profile", "send", "state", "ping", "unknown"];

/// Shared state of the fake homeserver.
pub struct Homeserver {
    server_name: String,
    room_prefix: String,
    next_room: AtomicU64,
    next_event: AtomicU64,
    aliases: Mutex<HashMap<String, String>>,
    calls: [AtomicU64; ENDPOINTS.len()],
    /// Records the `#<seq>` bodies of sends as they arrive.
    pub probe: Probe,
}

impl Homeserver {
    /// Calls per endpoint so far, in [`ENDPOINTS`] order.
    pub fn calls(&self) -> [u64; ENDPOINTS.len()] {
        std::array::from_fn(|i| self.calls[i].load(Ordering::Relaxed))
    }

    /// Calls to endpoints the instant homeserver does not know.
    pub fn unknown_calls(&self) -> u64 {
        self.calls[ENDPOINTS.len() - 1].load(Ordering::Relaxed)
    }

    fn count(&self, endpoint: &str) {
        let i = ENDPOINTS.iter().position(|e| *e == endpoint).unwrap_or(ENDPOINTS.len() - 1);
        self.calls[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves a fake homeserver for `server_name` on 127.0.0.1; returns its base URL.
pub async fn start(server_name: &str, nonce: &str) -> anyhow::Result<(String, Arc<Homeserver>)> {
    let state = Arc::new(Homeserver {
        server_name: server_name.to_owned(),
        room_prefix: format!("!{nonce}r"),
        next_room: AtomicU64::new(1),
        next_event: AtomicU64::new(1),
        aliases: Mutex::new(HashMap::new()),
        calls: std::array::from_fn(|_| AtomicU64::new(0)),
        probe: Probe::default(),
    });
    let c = "/_matrix/client/v3";
    let routes = Router::new()
        .route(&format!("{c}/register"), post(register))
        .route(&format!("{c}/directory/room/{{alias}}"), get(directory))
        .route(&format!("{c}/createRoom"), post(create_room))
        .route(&format!("{c}/rooms/{{room}}/join"), post(join))
        .route(&format!("{c}/rooms/{{room}}/invite"), post(invite))
        .route(&format!("{c}/profile/{{user}}/{{field}}"), put(profile))
        .route(&format!("{c}/rooms/{{room}}/send/{{kind}}/{{txn}}"), put(send))
        .route(&format!("{c}/rooms/{{room}}/state/{{kind}}/{{key}}"), put(set_state))
        .route("/_matrix/client/v1/appservice/{id}/ping", post(ping))
        .fallback(unknown)
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, routes).await {
            eprintln!("fake homeserver stopped: {err}");
        }
    });
    Ok((url, state))
}

type Hs = State<Arc<Homeserver>>;

fn ok(value: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

fn error(status: StatusCode, errcode: &str) -> Response {
    (status, axum::Json(json!({ "errcode": errcode, "error": errcode }))).into_response()
}

async fn register(State(hs): Hs, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Register {
        username: Option<String>,
    }
    hs.count("register");
    let Ok(Register { username: Some(name) }) = serde_json::from_slice(&body) else {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON");
    };
    ok(json!({ "user_id": format!("@{name}:{}", hs.server_name) }))
}

async fn directory(State(hs): Hs, Path(alias): Path<String>) -> Response {
    hs.count("directory");
    match hs.aliases.lock().expect("alias map poisoned").get(&alias) {
        Some(room) => ok(json!({ "room_id": room, "servers": [hs.server_name] })),
        None => error(StatusCode::NOT_FOUND, "M_NOT_FOUND"),
    }
}

async fn create_room(State(hs): Hs, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Create {
        room_alias_name: Option<String>,
    }
    hs.count("createRoom");
    let Ok(create) = serde_json::from_slice::<Create>(&body) else {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON");
    };
    let n = hs.next_room.fetch_add(1, Ordering::Relaxed);
    let room = format!("{}{n}:{}", hs.room_prefix, hs.server_name);
    if let Some(local) = create.room_alias_name {
        let alias = format!("#{local}:{}", hs.server_name);
        let mut aliases = hs.aliases.lock().expect("alias map poisoned");
        if aliases.contains_key(&alias) {
            return error(StatusCode::BAD_REQUEST, "M_ROOM_IN_USE");
        }
        aliases.insert(alias, room.clone());
    }
    ok(json!({ "room_id": room }))
}

async fn join(State(hs): Hs, Path(room): Path<String>) -> Response {
    hs.count("join");
    ok(json!({ "room_id": room }))
}

async fn invite(State(hs): Hs) -> Response {
    hs.count("invite");
    ok(json!({}))
}

async fn profile(State(hs): Hs) -> Response {
    hs.count("profile");
    ok(json!({}))
}

async fn send(State(hs): Hs, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow)]
        body: Option<&'a str>,
    }
    hs.count("send");
    let content = serde_json::from_slice::<Content<'_>>(&body).ok();
    hs.probe.received(content.and_then(|c| c.body));
    let n = hs.next_event.fetch_add(1, Ordering::Relaxed);
    ok(json!({ "event_id": format!("$bench{n}") }))
}

/// Room state the bridge sets (a portal's bridge status).
async fn set_state(State(hs): Hs) -> Response {
    hs.count("state");
    let n = hs.next_event.fetch_add(1, Ordering::Relaxed);
    ok(json!({ "event_id": format!("$bench{n}") }))
}

async fn ping(State(hs): Hs) -> Response {
    hs.count("ping");
    ok(json!({ "duration_ms": 0 }))
}

async fn unknown(State(hs): Hs) -> Response {
    hs.count("unknown");
    error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED")
}
