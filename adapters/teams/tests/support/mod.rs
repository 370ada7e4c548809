//! The adapter against the Graph double without Matrix: a store-like sink,
//! a webhook server handing requests to the adapter, and a relay identity
//! signed in through the double's device code flow.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use brygga_core::{
    Ack, Adapter, AdapterContext, AdapterState, BridgeError, EventBody, InboundEvent, InboundSink, MatrixMedia,
    MediaBytes, MemoryState, PortalDirectory, RemoteRoomId, TenantId, WebhookRequest,
};
use brygga_graph_double::{Conversation, GraphDouble, TestUser};
use brygga_teams::{TeamsAdapter, TeamsFactory};
use serde_json::{Value, json};

pub const TOKEN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Stores each event id once, like the bridge's outbox, and counts repeats.
#[derive(Default)]
pub struct Sink {
    pub events: Mutex<Vec<InboundEvent>>,
    seen: Mutex<HashSet<String>>,
}

#[async_trait]
impl InboundSink for Sink {
    async fn push(&self, event: InboundEvent) -> Result<Ack, BridgeError> {
        if event.body.is_ephemeral() {
            self.events.lock().unwrap().push(event);
            return Ok(Ack::Ephemeral);
        }
        if !self.seen.lock().unwrap().insert(format!("{}|{}", event.room, event.event_id)) {
            return Ok(Ack::Duplicate);
        }
        self.events.lock().unwrap().push(event);
        Ok(Ack::Stored)
    }
}

impl Sink {
    /// The texts of stored messages, in order.
    pub fn texts(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Message(m) => Some(m.text.body.clone()),
                _ => None,
            })
            .collect()
    }

    /// Events whose body matches.
    pub fn matching(&self, f: impl Fn(&InboundEvent) -> bool) -> Vec<InboundEvent> {
        self.events.lock().unwrap().iter().filter(|e| f(e)).cloned().collect()
    }
}

struct NoMedia;

#[async_trait]
impl MatrixMedia for NoMedia {
    async fn download(&self, _file: &brygga_core::MatrixFile) -> Result<MediaBytes, BridgeError> {
        Err(BridgeError::permanent("no media in this test"))
    }
}

struct Portals(Vec<RemoteRoomId>);

#[async_trait]
impl PortalDirectory for Portals {
    async fn rooms(&self) -> Result<Vec<RemoteRoomId>, BridgeError> {
        Ok(self.0.clone())
    }
}

/// The webhook's current adapter (replaced across restarts).
type Slot = Arc<Mutex<Option<Arc<dyn Adapter>>>>;

async fn hook(
    State(slot): State<Slot>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let adapter = slot.lock().unwrap().clone();
    let Some(adapter) = adapter else { return (StatusCode::SERVICE_UNAVAILABLE, String::new()).into_response() };
    let request = WebhookRequest::new(method.as_str(), path, query.unwrap_or_default(), body.to_vec());
    let response = adapter.webhook(request).await;
    let status = StatusCode::from_u16(response.status).unwrap();
    (status, [("content-type", response.content_type)], response.body).into_response()
}

/// The room id of a double's conversation, as portals write it.
pub fn room_of(conversation: &Conversation) -> String {
    match conversation {
        Conversation::Channel { team, channel, .. } => format!("{team}/{channel}"),
        Conversation::Chat { chat, .. } => chat.clone(),
        _ => unreachable!("only channels and chats exist"),
    }
}

/// A refresh token of `user`, through the double's device code flow.
pub async fn refresh_token(graph: &GraphDouble, user: &TestUser) -> String {
    let http = reqwest::Client::new();
    let scope = "offline_access User.Read ChannelMessage.Send ChannelMessage.ReadWrite Chat.ReadWrite";
    let code: Value = http
        .post(graph.device_code_url(&user.tenant))
        .form(&[("client_id", graph.client_id()), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(graph.complete_device_login(code["user_code"].as_str().unwrap(), user));
    let grant = [
        ("client_id", graph.client_id()),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", code["device_code"].as_str().unwrap()),
    ];
    let tokens: Value =
        http.post(graph.login_url(&user.tenant)).form(&grant).send().await.unwrap().json().await.unwrap();
    tokens["refresh_token"].as_str().expect("a refresh token").to_owned()
}

/// One tenant's adapter against the double, with its webhook.
pub struct Bridge {
    pub sink: Arc<Sink>,
    pub state: Arc<dyn AdapterState>,
    pub config: Value,
    pub rooms: Vec<RemoteRoomId>,
    pub tenant: TenantId,
    /// Where the adapter reports its health.
    pub board: brygga_core::StatusBoard,
    slot: Slot,
    pub hook_base: String,
}

impl Bridge {
    /// A bridge for `rooms` of `graph_tenant` with `relay` as its relay identity.
    pub async fn new(graph: &GraphDouble, graph_tenant: &str, relay: &TestUser, rooms: &[&Conversation]) -> Self {
        let slot: Slot = Arc::default();
        let app = axum::Router::new().route("/hook/{*path}", axum::routing::any(hook)).with_state(slot.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_base = format!("http://{}/hook/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = json!({
            "client_id": graph.client_id(), "client_secret": graph.client_secret(), "tenant_id": graph_tenant,
            "notification_url_base": hook_base, "token_key": TOKEN_KEY,
            "relay_user_id": relay.id, "relay_refresh_token": refresh_token(graph, relay).await,
            "graph_url": graph.url(), "login_url": graph.login_base(), "matrix_server_name": "hub.example",
            "presence_interval_secs": 5,
        });
        let rooms = rooms.iter().map(|c| RemoteRoomId::new(room_of(c)).unwrap()).collect();
        let tenant = TenantId::new("agency").unwrap();
        let board = brygga_core::StatusBoard::default();
        Self {
            sink: Arc::default(),
            state: Arc::new(MemoryState::default()),
            config,
            rooms,
            tenant,
            board,
            slot,
            hook_base,
        }
    }

    /// Builds and starts a fresh adapter on the same state and sink (a bridge (re)start).
    pub async fn start(&self) -> Arc<TeamsAdapter> {
        self.try_start().await.unwrap()
    }

    /// As [`Self::start`], with the start's error.
    pub async fn try_start(&self) -> Result<Arc<TeamsAdapter>, BridgeError> {
        let ctx = AdapterContext::new(self.tenant.clone(), self.config.clone(), self.sink.clone(), Arc::new(NoMedia))
            .with_state(self.state.clone())
            .with_portals(Arc::new(Portals(self.rooms.clone())))
            .with_status(self.board.reporter(self.tenant.clone(), brygga_core::AdapterKind::new("teams").unwrap()));
        let adapter = TeamsFactory.build_teams(ctx)?;
        adapter.start().await?;
        *self.slot.lock().unwrap() = Some(adapter.clone());
        Ok(adapter)
    }

    /// The adapter's last reported health.
    pub fn health(&self) -> Option<brygga_core::Health> {
        self.board.get(&self.tenant, &brygga_core::AdapterKind::new("teams").unwrap()).map(|s| s.health)
    }

    /// Stops taking webhooks (the bridge is down).
    pub async fn stop(&self, adapter: &Arc<TeamsAdapter>) {
        *self.slot.lock().unwrap() = None;
        adapter.stop().await;
    }
}

/// Waits until Graph holds `count` subscriptions of the app in `tenant`.
pub async fn subscribed(graph: &GraphDouble, tenant: &str, count: usize) -> Vec<Value> {
    for _ in 0..200 {
        let subs = subscriptions(graph, tenant).await;
        if subs.len() == count {
            return subs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {count} subscriptions");
}

/// Waits up to 20 s for `check`.
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    eventually_for(Duration::from_secs(20), what, check).await;
}

/// Waits up to `limit` for `check`.
pub async fn eventually_for(limit: Duration, what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The subscriptions Graph holds for the app in `tenant`.
pub async fn subscriptions(graph: &GraphDouble, tenant: &str) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .get(format!("{}/subscriptions", graph.url()))
        .bearer_auth(graph.app_token(tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["value"].as_array().cloned().unwrap_or_default()
}
