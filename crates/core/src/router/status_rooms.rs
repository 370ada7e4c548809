//! The bridge status as state in each portal room
//! (`org.brygga.bridge.status`, keyed like the room's `m.bridge` event), so
//! Matrix clients can show whether the platform behind a room is reachable.
//!
//! Bursts of changes settle before anything is sent; only the latest
//! status goes out, and a room is sent a status only when it differs from
//! the one it was last sent. New portal rooms get theirs at once, and a
//! periodic sweep catches rooms that appeared by other paths.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::error::BridgeError;
use crate::ids::{AdapterKind, MatrixRoomId, PortalKey, TenantId};
use crate::matrix::{MatrixSide, bridge_state_key};
use crate::shard::Owners;
use crate::status::{StatusBoard, now_ms, shown_health};
use crate::store::Store;

/// The state event type.
pub const STATUS_EVENT_TYPE: &str = "org.brygga.bridge.status";
/// How long changes settle before the latest is sent.
const SETTLE: Duration = Duration::from_secs(1);
/// How often every portal room is checked.
const SWEEP: Duration = Duration::from_secs(60);

type Key = (TenantId, AdapterKind);

/// Sets the bridge status in portal rooms.
pub(crate) struct StatusRooms {
    store: Arc<dyn Store>,
    matrix: Arc<dyn MatrixSide>,
    board: StatusBoard,
    /// Only the owner of a tenant knows its adapters' health.
    owners: Owners,
    /// The status last worked out per adapter (it outlives the board's
    /// entry of a stopped adapter, keeping its last error).
    shown: HashMap<Key, Value>,
    /// The status last sent to each room.
    sent: HashMap<MatrixRoomId, Value>,
    /// Tenants owned at the last sweep: one owned anew may have had its
    /// rooms' status set by another process meanwhile.
    owned: std::collections::HashSet<TenantId>,
}

/// The parts of a status that make it news (not when an error repeated).
fn news(content: &Value) -> (&Value, &Value, &Value) {
    (&content["health"], &content["since"], &content["last_error"])
}

impl StatusRooms {
    pub(crate) fn new(store: Arc<dyn Store>, matrix: Arc<dyn MatrixSide>, board: StatusBoard, owners: Owners) -> Self {
        Self { store, matrix, board, owners, shown: HashMap::new(), sent: HashMap::new(), owned: Default::default() }
    }

    /// Runs until `cancel`: on settled board changes, new rooms and sweeps.
    pub(crate) async fn run(
        mut self,
        mut new_rooms: mpsc::UnboundedReceiver<(PortalKey, MatrixRoomId)>,
        cancel: CancellationToken,
    ) {
        let mut changes: watch::Receiver<u64> = self.board.changes();
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            let outcome = tokio::select! {
                () = cancel.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tokio::time::sleep(SETTLE).await;
                    changes.mark_unchanged();
                    self.publish_all().await
                }
                Some((key, room)) = new_rooms.recv() => self.publish_room(&key, room).await,
                _ = sweep.tick() => self.publish_all().await,
            };
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "setting the bridge status in portal rooms failed");
            }
        }
    }

    /// The status of one adapter as it goes into rooms.
    fn content(&mut self, key: &Key, enabled: bool) -> Value {
        let reported = self.board.get(&key.0, &key.1);
        let health = shown_health(enabled, reported.as_ref());
        let before = self.shown.get(key);
        let since = match (&reported, before) {
            (Some(status), _) if enabled => status.since,
            (_, Some(before)) if before["health"] == health => before["since"].as_i64().unwrap_or_else(now_ms),
            _ => now_ms(),
        };
        // A stopped adapter's board entry is gone: its last error is kept from before.
        let (last_error, last_error_at) = match &reported {
            Some(status) if status.last_error.is_some() => (json!(status.last_error), json!(status.last_error_at)),
            _ => before.map_or((Value::Null, Value::Null), |b| (b["last_error"].clone(), b["last_error_at"].clone())),
        };
        let content = json!({
            "protocol": key.1.as_str(),
            "health": health,
            "since": since,
            "last_error": last_error,
            "last_error_at": last_error_at,
        });
        self.shown.insert(key.clone(), content.clone());
        content
    }

    async fn publish_all(&mut self) -> Result<(), BridgeError> {
        let configs = self.store.adapter_configs(None).await?;
        let mut portals_of: HashMap<TenantId, Vec<crate::store::Portal>> = HashMap::new();
        let owners = self.owners.clone();
        for config in configs.into_iter().filter(|c| owners.owns(&c.tenant)) {
            let key = (config.tenant.clone(), config.kind.clone());
            let content = self.content(&key, config.enabled);
            if !portals_of.contains_key(&config.tenant) {
                portals_of.insert(config.tenant.clone(), self.store.portals(&config.tenant).await?);
            }
            let rooms: Vec<(PortalKey, MatrixRoomId)> = portals_of[&config.tenant]
                .iter()
                .filter(|p| p.key.kind == config.kind)
                .filter_map(|p| p.room_id.clone().map(|room| (p.key.clone(), room)))
                .collect();
            if !self.owned.contains(&config.tenant) {
                for (_, room) in &rooms {
                    self.sent.remove(room);
                }
            }
            for (portal, room) in rooms {
                self.send(&portal, room, &content).await;
            }
        }
        self.owned = portals_of.into_keys().collect();
        Ok(())
    }

    async fn publish_room(&mut self, portal: &PortalKey, room: MatrixRoomId) -> Result<(), BridgeError> {
        if !self.owners.owns(&portal.tenant) {
            return Ok(());
        }
        let Some(config) = self.store.adapter_config(&portal.tenant, &portal.kind).await? else { return Ok(()) };
        let content = self.content(&(portal.tenant.clone(), portal.kind.clone()), config.enabled);
        self.send(portal, room, &content).await;
        Ok(())
    }

    /// Sends the status to one room unless it already has it; a failure is
    /// logged and retried with the next change or sweep.
    async fn send(&mut self, portal: &PortalKey, room: MatrixRoomId, content: &Value) {
        if self.sent.get(&room).is_some_and(|sent| news(sent) == news(content)) {
            return;
        }
        match self.matrix.set_state(&room, STATUS_EVENT_TYPE, &bridge_state_key(portal), content).await {
            Ok(()) => {
                self.sent.insert(room, content.clone());
            }
            Err(err) => tracing::warn!(portal = %portal, error = %err, "setting a portal's bridge status failed"),
        }
    }
}
