//! Test support: a webhook standing in for the bridge's notification
//! endpoint, a Graph client, and schema checks of the double's responses.

#![allow(dead_code)]

pub mod schemas;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use brygga_graph_double::{GraphDouble, TestUser};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the webhook answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Echo validation tokens as text/plain, accept notifications with 202.
    Healthy,
    /// Echo a wrong validation token.
    WrongEcho,
    /// Echo the token but as JSON.
    JsonEcho,
    /// Answer notifications 500.
    Failing,
    /// Echo validation tokens only after a second.
    Slow,
}

#[derive(Default)]
struct Inner {
    mode: Option<Mode>,
    validations: Vec<String>,
    notifications: Vec<Value>,
}

/// A running webhook.
#[derive(Clone)]
pub struct Webhook {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mode = {
        let mut inner = inner.lock().unwrap();
        if let Some(token) = q.get("validationToken") {
            inner.validations.push(token.clone());
        }
        inner.mode.unwrap_or(Mode::Healthy)
    };
    if let Some(token) = q.get("validationToken") {
        let plain = [("content-type", "text/plain")];
        return match mode {
            Mode::WrongEcho => (plain, "nope".to_owned()).into_response(),
            Mode::JsonEcho => ([("content-type", "application/json")], format!("\"{token}\"")).into_response(),
            Mode::Slow => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                (plain, token.clone()).into_response()
            }
            _ => (plain, token.clone()).into_response(),
        };
    }
    if mode == Mode::Failing {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    inner.lock().unwrap().notifications.push(value);
    StatusCode::ACCEPTED.into_response()
}

impl Webhook {
    /// Starts on a free port; `url` is `http://127.0.0.1:<port>/notify`.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().route("/notify", post(hook)).route("/lifecycle", post(hook)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { inner, url }
    }

    /// The lifecycle URL on the same server.
    pub fn lifecycle_url(&self) -> String {
        self.url.replace("/notify", "/lifecycle")
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }

    pub fn validations(&self) -> Vec<String> {
        self.inner.lock().unwrap().validations.clone()
    }

    /// Every notification body received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.inner.lock().unwrap().notifications.clone()
    }

    /// Every notification item (`value[*]`) received so far.
    pub fn items(&self) -> Vec<Value> {
        let inner = self.inner.lock().unwrap();
        inner.notifications.iter().flat_map(|n| n["value"].as_array().cloned().unwrap_or_default()).collect()
    }

    /// Waits until `pred` holds for the received items.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..100 {
            let items = self.items();
            if pred(&items) {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}; got {:#?}", self.items());
    }
}

/// A Graph client with a bearer token, as the adapter would be.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(graph: &GraphDouble, token: String) -> Self {
        Self { http: reqwest::Client::new(), base: graph.url(), token }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let r = self.http.get(url).bearer_auth(&self.token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }
}

/// A client-credentials token over the token endpoint.
pub async fn app_token(graph: &GraphDouble, tenant: &str) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", graph.client_id()),
        ("client_secret", graph.client_secret()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let r = reqwest::Client::new().post(graph.login_url(tenant)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A tenant with Alice and Bob in a team with one channel, and a chat of the two.
pub struct World {
    pub tenant: String,
    pub alice: TestUser,
    pub bob: TestUser,
    pub team: String,
    pub channel: brygga_graph_double::Conversation,
    pub chat: brygga_graph_double::Conversation,
}

/// Sets up [`World`]; the per-channel rate limit is off (the throttling tests turn it on).
pub fn world(graph: &GraphDouble) -> World {
    graph.set_conversation_rate_limit(None);
    let tenant = graph.add_tenant();
    let alice = graph.add_user(&tenant, "Alice Andersson");
    let bob = graph.add_user(&tenant, "Bob Berg");
    let team = graph.add_team(&tenant, "Agency", &[&alice, &bob]);
    let channel = graph.add_channel(&tenant, &team, "General");
    let chat = graph.add_chat(&tenant, None, &[&alice, &bob]);
    World { tenant, alice, bob, team, channel, chat }
}

/// `/teams/{t}/channels/{c}` or `/chats/{id}` of a conversation.
pub fn path(c: &brygga_graph_double::Conversation) -> String {
    c.resource().trim_end_matches("/messages").to_owned()
}
