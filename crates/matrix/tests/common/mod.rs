//! A small fake homeserver that records every request and can be scripted
//! to answer specific requests with errors.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use brygga_matrix::{ClientSettings, MatrixClient};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

pub const AS_TOKEN: &str = "as-secret";
pub const SERVER: &str = "hs";

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    /// Percent-decoded path.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    pub auth: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

struct Scripted {
    method: Method,
    path_contains: String,
    status: StatusCode,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
pub struct Fake {
    pub log: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Scripted>>,
    pub aliases: Mutex<HashMap<String, String>>,
    /// Uploaded media by id, served back by the download endpoints.
    pub uploads: Mutex<HashMap<String, Bytes>>,
    counter: AtomicU64,
}

impl Fake {
    /// Answers the next matching request once with `status` and `body`.
    pub fn script(&self, method: Method, path_contains: &str, status: u16, body: Value) {
        self.script_with_headers(method, path_contains, status, body, vec![]);
    }

    pub fn script_with_headers(
        &self,
        method: Method,
        path_contains: &str,
        status: u16,
        body: Value,
        headers: Vec<(&'static str, String)>,
    ) {
        self.script.lock().unwrap().push_back(Scripted {
            method,
            path_contains: path_contains.to_owned(),
            status: StatusCode::from_u16(status).unwrap(),
            body,
            headers,
        });
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }

    /// Requests whose path contains `fragment`.
    pub fn matching(&self, fragment: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path.contains(fragment)).collect()
    }
}

/// Starts the fake on a free loopback port.
pub async fn start() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, format!("http://{addr}"))
}

/// A client against the fake with fast retries and a short retry budget.
pub fn client(base: &str) -> MatrixClient {
    client_with(base, |_| {})
}

pub fn client_with(base: &str, tweak: impl FnOnce(&mut ClientSettings)) -> MatrixClient {
    let mut settings = ClientSettings::new(base.parse().unwrap(), SERVER, AS_TOKEN, "bot");
    settings.initial_backoff = Duration::from_millis(10);
    settings.max_backoff = Duration::from_millis(40);
    settings.retry_budget = Duration::from_secs(3);
    settings.request_timeout = Duration::from_secs(3);
    tweak(&mut settings);
    MatrixClient::new(settings).unwrap()
}

fn error(status: StatusCode, errcode: &str) -> Response {
    (status, axum::Json(json!({"errcode": errcode, "error": "fake"}))).into_response()
}

fn ok(body: Value) -> Response {
    axum::Json(body).into_response()
}

async fn handle(State(fake): State<Arc<Fake>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = percent_decode_str(uri.path()).decode_utf8_lossy().into_owned();
    let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let recorded = Recorded {
        method: method.clone(),
        path: path.clone(),
        query,
        auth: header("authorization"),
        content_type: header("content-type"),
        body,
    };
    fake.log.lock().unwrap().push(recorded.clone());

    let scripted = {
        let mut script = fake.script.lock().unwrap();
        let index = script.iter().position(|s| s.method == method && path.contains(&s.path_contains));
        index.and_then(|i| script.remove(i))
    };
    if let Some(s) = scripted {
        let mut response = (s.status, axum::Json(s.body)).into_response();
        for (name, value) in s.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }
    default_answer(&fake, &method, &path, &recorded)
}

fn default_answer(fake: &Fake, method: &Method, path: &str, request: &Recorded) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let n = fake.counter.fetch_add(1, Ordering::SeqCst);
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["_matrix", "client", "v3", "register"]) => {
            let user = request.json()["username"].as_str().unwrap_or("x").to_owned();
            ok(json!({"user_id": format!("@{user}:{SERVER}")}))
        }
        ("PUT", ["_matrix", "client", "v3", "profile", ..]) => ok(json!({})),
        ("GET", ["_matrix", "client", "v3", "directory", "room", alias]) => {
            match fake.aliases.lock().unwrap().get(*alias) {
                Some(room) => ok(json!({"room_id": room, "servers": [SERVER]})),
                None => error(StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            }
        }
        ("POST", ["_matrix", "client", "v3", "createRoom"]) => {
            let room = format!("!room{n}:{SERVER}");
            if let Some(local) = request.json()["room_alias_name"].as_str() {
                let alias = format!("#{local}:{SERVER}");
                let mut aliases = fake.aliases.lock().unwrap();
                if aliases.contains_key(&alias) {
                    return error(StatusCode::BAD_REQUEST, "M_ROOM_IN_USE");
                }
                aliases.insert(alias, room.clone());
            }
            ok(json!({"room_id": room}))
        }
        ("POST", ["_matrix", "client", "v3", "rooms", room, "join"]) => ok(json!({"room_id": room})),
        ("POST", ["_matrix", "client", "v3", "rooms", _, "invite" | "leave"]) => ok(json!({})),
        ("PUT", ["_matrix", "client", "v3", "rooms", _, "send", _, txn]) => ok(json!({"event_id": format!("${txn}")})),
        ("PUT", ["_matrix", "client", "v3", "rooms", _, "redact", _, txn]) => {
            ok(json!({"event_id": format!("$redaction-{txn}")}))
        }
        ("PUT", ["_matrix", "client", "v3", "rooms", _, "typing", _]) => ok(json!({})),
        ("PUT", ["_matrix", "client", "v3", "presence", _, "status"]) => ok(json!({})),
        ("POST", ["_matrix", "client", "v3", "rooms", _, "receipt", _, _]) => ok(json!({})),
        ("POST", ["_matrix", "media", "v3", "upload"]) => {
            fake.uploads.lock().unwrap().insert(format!("up{n}"), request.body.clone());
            ok(json!({"content_uri": format!("mxc://{SERVER}/up{n}")}))
        }
        ("GET", ["_matrix", "client", "v1", "media", "download", _, id]) => match fake.uploads.lock().unwrap().get(*id)
        {
            Some(bytes) => ([("content-type", "application/octet-stream")], bytes.clone()).into_response(),
            None => media(format!("v1:{id}")),
        },
        ("GET", ["_matrix", "media", "v3", "download", _, id]) => media(format!("v3:{id}")),
        ("POST", ["_matrix", "client", "v1", "appservice", _, "ping"]) => ok(json!({"duration_ms": 12})),
        _ => error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED"),
    }
}

fn media(content: String) -> Response {
    ([("content-type", "text/plain")], content).into_response()
}
