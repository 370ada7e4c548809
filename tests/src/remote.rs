//! A fake remote chat network for end-to-end tests, served over HTTP by the
//! test process. The loopback adapter inside the bridge talks to it the way a
//! real adapter talks to its platform: it long-polls for new events,
//! acknowledges them once the bridge stored them, and posts outbound sends,
//! which the network deduplicates by transaction id like real platforms do
//! (Rocket.Chat's client-chosen `_id`, for example).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use brygga_core::{InboundEvent, OutboundEvent, RemoteRoomId};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// One stored remote event and its position.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Position in the network's event log, from 1.
    pub cursor: u64,
    /// The event.
    pub event: InboundEvent,
}

/// A page of events for the adapter.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventPage {
    /// Events after the acknowledged cursor, in order.
    pub events: Vec<Envelope>,
}

/// The adapter's acknowledgement.
#[derive(Debug, Serialize, Deserialize)]
pub struct AckBody {
    /// Everything up to here is stored by the bridge.
    pub cursor: u64,
}

/// Answer to a send.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendAnswer {
    /// Remote ids created (the same ones again for a repeated transaction).
    pub remote_ids: Vec<String>,
}

#[derive(Default)]
struct Network {
    log: Vec<InboundEvent>,
    acked: u64,
    sends: Vec<OutboundEvent>,
    by_txn: HashMap<String, Vec<String>>,
    attempts: u64,
    slow_rooms: HashMap<RemoteRoomId, Duration>,
    failing_sends: u32,
    /// While set, polls for events answer 503 (the platform is down).
    down: bool,
    media: BTreeMap<String, Vec<u8>>,
    next_id: u64,
}

#[derive(Default)]
struct Shared {
    networks: Mutex<HashMap<String, Network>>,
    arrived: Notify,
}

/// The fake network and its HTTP server.
pub struct FakeRemote {
    shared: Arc<Shared>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl FakeRemote {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .route("/{net}/events", get(events))
            .route("/{net}/ack", post(ack))
            .route("/{net}/send", post(send))
            .route("/{net}/media/{id}", get(media).put(upload))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake remote");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake remote server");
        });
        Self { shared, url, server }
    }

    /// Base URL for the adapter config.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn with<T>(&self, net: &str, f: impl FnOnce(&mut Network) -> T) -> T {
        let mut networks = self.shared.networks.lock().expect("fake remote poisoned");
        f(networks.entry(net.to_owned()).or_default())
    }

    /// Makes an event happen on the network; the adapter will pick it up.
    pub fn inject(&self, net: &str, event: InboundEvent) {
        self.with(net, |n| n.log.push(event));
        self.shared.arrived.notify_waiters();
    }

    /// Stores a file the adapter can fetch as `MediaSource::Remote { locator: id }`.
    pub fn put_media(&self, net: &str, id: &str, bytes: Vec<u8>) {
        self.with(net, |n| n.media.insert(id.to_owned(), bytes));
    }

    /// A file the bridge uploaded (or the test stored).
    pub fn media(&self, net: &str, id: &str) -> Option<Vec<u8>> {
        self.with(net, |n| n.media.get(id).cloned())
    }

    /// How far the bridge has acknowledged the event log.
    pub fn acked(&self, net: &str) -> u64 {
        self.with(net, |n| n.acked)
    }

    /// Distinct events the bridge delivered, in order of first arrival.
    pub fn sent(&self, net: &str) -> Vec<OutboundEvent> {
        self.with(net, |n| n.sends.clone())
    }

    /// Send requests received, repeats included.
    pub fn send_attempts(&self, net: &str) -> u64 {
        self.with(net, |n| n.attempts)
    }

    /// Delays every send to one room.
    pub fn set_slow(&self, net: &str, room: &RemoteRoomId, delay: Duration) {
        self.with(net, |n| n.slow_rooms.insert(room.clone(), delay));
    }

    /// Fails the next `count` sends with 503.
    pub fn fail_next_sends(&self, net: &str, count: u32) {
        self.with(net, |n| n.failing_sends = count);
    }

    /// Takes the network down (polls answer 503) or brings it back.
    pub fn set_down(&self, net: &str, down: bool) {
        self.with(net, |n| n.down = down);
        self.shared.arrived.notify_waiters();
    }

    /// Waits until `pred` holds for the network, or panics after `timeout`.
    pub async fn wait_for(&self, net: &str, timeout: Duration, what: &str, pred: impl Fn(&[OutboundEvent]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.with(net, |n| pred(&n.sends)) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let count = self.with(net, |n| n.sends.len());
                panic!("timed out waiting for {what} (network {net} has {count} sends)");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for FakeRemote {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Deserialize)]
struct Wait {
    wait_ms: Option<u64>,
}

async fn events(
    Path(net): Path<String>,
    Query(wait): Query<Wait>,
    State(shared): State<Arc<Shared>>,
) -> Result<Json<EventPage>, (StatusCode, &'static str)> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait.wait_ms.unwrap_or(0).min(5_000));
    loop {
        let arrived = shared.arrived.notified();
        let page = {
            let mut networks = shared.networks.lock().expect("fake remote poisoned");
            let n = networks.entry(net.clone()).or_default();
            if n.down {
                return Err((StatusCode::SERVICE_UNAVAILABLE, "the network is down"));
            }
            let start = n.acked as usize;
            let events: Vec<Envelope> = n.log[start..]
                .iter()
                .take(500)
                .enumerate()
                .map(|(i, e)| Envelope { cursor: (start + i + 1) as u64, event: e.clone() })
                .collect();
            events
        };
        if !page.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(EventPage { events: page }));
        }
        let _ = tokio::time::timeout_at(deadline, arrived).await;
    }
}

async fn ack(Path(net): Path<String>, State(shared): State<Arc<Shared>>, Json(body): Json<AckBody>) -> StatusCode {
    let mut networks = shared.networks.lock().expect("fake remote poisoned");
    let n = networks.entry(net).or_default();
    if body.cursor as usize > n.log.len() {
        return StatusCode::BAD_REQUEST;
    }
    n.acked = n.acked.max(body.cursor);
    StatusCode::NO_CONTENT
}

async fn send(
    Path(net): Path<String>,
    State(shared): State<Arc<Shared>>,
    Json(event): Json<OutboundEvent>,
) -> Result<Json<SendAnswer>, (StatusCode, &'static str)> {
    let delay = {
        let mut networks = shared.networks.lock().expect("fake remote poisoned");
        let n = networks.entry(net.clone()).or_default();
        n.attempts += 1;
        if n.failing_sends > 0 {
            n.failing_sends -= 1;
            return Err((StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable"));
        }
        n.slow_rooms.get(&event.room).copied()
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut networks = shared.networks.lock().expect("fake remote poisoned");
    let n = networks.entry(net).or_default();
    if let Some(ids) = n.by_txn.get(&event.txn_id) {
        return Ok(Json(SendAnswer { remote_ids: ids.clone() }));
    }
    let ids = if matches!(event.body, brygga_core::EventBody::Message(_)) {
        n.next_id += 1;
        vec![format!("rm-{}", n.next_id)]
    } else {
        Vec::new()
    };
    n.by_txn.insert(event.txn_id.clone(), ids.clone());
    n.sends.push(event);
    Ok(Json(SendAnswer { remote_ids: ids }))
}

async fn media(
    Path((net, id)): Path<(String, String)>,
    State(shared): State<Arc<Shared>>,
) -> Result<Vec<u8>, StatusCode> {
    let networks = shared.networks.lock().expect("fake remote poisoned");
    networks.get(&net).and_then(|n| n.media.get(&id).cloned()).ok_or(StatusCode::NOT_FOUND)
}

async fn upload(
    Path((net, id)): Path<(String, String)>,
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut networks = shared.networks.lock().expect("fake remote poisoned");
    networks.entry(net).or_default().media.insert(id, body.to_vec());
    StatusCode::NO_CONTENT
}
