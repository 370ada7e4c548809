//! Ephemeral events (MSC2409): typing, read receipts, presence.
//!
//! Matrix sends the full set of typing users per room; the canonical model
//! has per-user start/stop events, so the server keeps the last set of each
//! room and emits only the changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use brygga_core::{EventBody, MatrixEvent, MatrixEventId, MatrixRoomId, MatrixUserId, Presence};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Room id given to presence events, which belong to no room. The core's
/// `MatrixEvent` requires a room; `.invalid` can never be a real server.
pub const PRESENCE_ROOM: &str = "!presence:brygga.invalid";

/// Per-server state of ephemeral parsing.
pub(crate) struct EphemeralState {
    typing: Mutex<HashMap<MatrixRoomId, BTreeSet<MatrixUserId>>>,
    /// Distinguishes this process's synthetic ids from an earlier run's.
    nonce: String,
    counter: AtomicU64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: String,
    room_id: Option<String>,
    sender: Option<String>,
    #[serde(borrow)]
    content: &'a RawValue,
}

impl EphemeralState {
    pub(crate) fn new() -> Self {
        Self { typing: Mutex::new(HashMap::new()), nonce: format!("{:x}", now_nanos()), counter: AtomicU64::new(0) }
    }

    /// Parses every ephemeral event, skipping (and logging) bad ones.
    pub(crate) fn parse_all(&self, raws: &[&RawValue]) -> Vec<MatrixEvent> {
        let mut out = Vec::new();
        for raw in raws {
            let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(raw.get()) else {
                tracing::warn!("skipping an ephemeral event without a valid envelope");
                continue;
            };
            let result = match envelope.kind.as_str() {
                "m.typing" => self.typing(&envelope, &mut out),
                "m.receipt" => self.receipts(&envelope, &mut out),
                "m.presence" => self.presence(&envelope, &mut out),
                other => {
                    tracing::debug!(event_type = other, "ignoring ephemeral event type");
                    Ok(())
                }
            };
            if let Err(reason) = result {
                tracing::warn!(event_type = %envelope.kind, reason, "skipping malformed ephemeral event");
            }
        }
        out
    }

    fn synthetic_id(&self) -> MatrixEventId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        MatrixEventId::new(format!("$brygga-ephemeral.{}.{n}", self.nonce)).expect("synthetic ids are valid")
    }

    fn event(
        &self,
        room_id: MatrixRoomId,
        sender: MatrixUserId,
        ts: i64,
        body: EventBody<MatrixEventId>,
    ) -> MatrixEvent {
        MatrixEvent {
            room_id,
            event_id: self.synthetic_id(),
            sender,
            origin_server_ts: ts,
            state_key: None,
            direct: false,
            body,
        }
    }

    fn typing(&self, envelope: &Envelope<'_>, out: &mut Vec<MatrixEvent>) -> Result<(), &'static str> {
        #[derive(Deserialize)]
        struct Typing {
            user_ids: Vec<String>,
        }
        let room = room_of(envelope)?;
        let content: Typing = serde_json::from_str(envelope.content.get()).map_err(|_| "invalid m.typing content")?;
        let now: BTreeSet<MatrixUserId> =
            content.user_ids.into_iter().filter_map(|u| MatrixUserId::new(u).ok()).collect();
        let before = {
            let mut typing = self.typing.lock().unwrap_or_else(|e| e.into_inner());
            if now.is_empty() {
                typing.remove(&room).unwrap_or_default()
            } else {
                typing.insert(room.clone(), now.clone()).unwrap_or_default()
            }
        };
        let ts = now_millis();
        for user in now.difference(&before) {
            out.push(self.event(room.clone(), user.clone(), ts, EventBody::Typing { typing: true }));
        }
        for user in before.difference(&now) {
            out.push(self.event(room.clone(), user.clone(), ts, EventBody::Typing { typing: false }));
        }
        Ok(())
    }

    fn receipts(&self, envelope: &Envelope<'_>, out: &mut Vec<MatrixEvent>) -> Result<(), &'static str> {
        #[derive(Deserialize)]
        struct Receipt {
            #[serde(default)]
            ts: Option<i64>,
        }
        // {event_id: {receipt_type: {user_id: {ts}}}}
        type Content = BTreeMap<String, BTreeMap<String, BTreeMap<String, Receipt>>>;
        let room = room_of(envelope)?;
        let content: Content = serde_json::from_str(envelope.content.get()).map_err(|_| "invalid m.receipt content")?;
        for (event_id, by_type) in content {
            let Ok(up_to) = MatrixEventId::new(event_id) else {
                continue;
            };
            // Only public read receipts are bridged; private ones stay private.
            let Some(users) = by_type.get("m.read") else {
                continue;
            };
            for (user, receipt) in users {
                let Ok(user) = MatrixUserId::new(user.as_str()) else {
                    continue;
                };
                let ts = receipt.ts.unwrap_or_else(now_millis);
                let body = EventBody::ReadReceipt { up_to: up_to.clone() };
                out.push(self.event(room.clone(), user, ts, body));
            }
        }
        Ok(())
    }

    fn presence(&self, envelope: &Envelope<'_>, out: &mut Vec<MatrixEvent>) -> Result<(), &'static str> {
        #[derive(Deserialize)]
        struct PresenceContent {
            presence: String,
            status_msg: Option<String>,
        }
        let sender = envelope.sender.clone().ok_or("presence without sender")?;
        let sender = MatrixUserId::new(sender).map_err(|_| "invalid sender")?;
        let content: PresenceContent =
            serde_json::from_str(envelope.content.get()).map_err(|_| "invalid m.presence content")?;
        let presence = match content.presence.as_str() {
            "online" => Presence::Online,
            "unavailable" => Presence::Unavailable,
            "offline" => Presence::Offline,
            _ => return Err("unknown presence state"),
        };
        let room = MatrixRoomId::new(PRESENCE_ROOM).expect("constant is a valid room id");
        let body = EventBody::Presence { presence, status: content.status_msg.filter(|s| !s.is_empty()) };
        out.push(self.event(room, sender, now_millis(), body));
        Ok(())
    }
}

fn room_of(envelope: &Envelope<'_>) -> Result<MatrixRoomId, &'static str> {
    let room = envelope.room_id.clone().ok_or("missing room_id")?;
    MatrixRoomId::new(room).map_err(|_| "invalid room_id")
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn now_millis() -> i64 {
    (now_nanos() / 1_000_000) as i64
}
