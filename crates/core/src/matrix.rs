//! What the router needs from the Matrix side, implemented by `brygga-matrix`.
//!
//! The router speaks canonical events; the Matrix crate renders them into
//! Matrix content and parses appservice transactions back into them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::adapter::MediaBytes;
use crate::error::BridgeError;
use crate::event::{EventBody, MatrixEvent};
use crate::ids::{MatrixEventId, MatrixRoomId, MatrixUserId};
use crate::matrix_file::MatrixFile;

/// Profile to set on a ghost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhostProfile {
    /// Display name.
    pub display_name: Option<String>,
    /// Avatar as `mxc://` URI.
    pub avatar_mxc: Option<String>,
}

pub use crate::bridge_info::{BRIDGE_STATE_TYPES, BridgeInfo, bridge_state_key};

/// The `m.room.server_acl` content for a tenant's federation policy: its
/// allowed servers and the bridge's own, no IP literals; an empty list
/// (any server) allows every server.
pub fn server_acl_content(allowed: &[String], own: &str) -> serde_json::Value {
    let mut allow: Vec<&str> = std::iter::once(own).chain(allowed.iter().map(String::as_str)).collect();
    if allowed.is_empty() {
        allow = vec!["*"];
    }
    allow.sort_unstable();
    allow.dedup();
    serde_json::json!({ "allow": allow, "deny": [], "allow_ip_literals": false })
}

/// The two sides of a direct chat's Matrix room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectRoom {
    /// The ghost that creates the room.
    pub ghost: MatrixUserId,
    /// The Matrix user it is for.
    pub peer: MatrixUserId,
}

/// A portal room to create, idempotently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSpec {
    /// Local part of the room alias; an existing alias means the room exists.
    pub alias_localpart: String,
    /// Room name.
    pub name: Option<String>,
    /// Users to invite at creation.
    pub invite: Vec<MatrixUserId>,
    /// Anyone who knows the alias may join (rooms created on an alias query).
    pub public: bool,
    /// For a direct chat: created by the remote user's ghost for one Matrix user.
    pub direct: Option<DirectRoom>,
    /// The homeserver just asked the bridge about this alias, so it is free:
    /// looking it up again would only make the homeserver ask again.
    pub alias_is_free: bool,
    /// Bridge info state.
    pub bridge: BridgeInfo,
    /// The Matrix servers the room may federate with, besides the bridge's
    /// own (empty: any); becomes the room's `m.room.server_acl`.
    pub allowed_servers: Vec<String>,
    /// Created end-to-bridge encrypted (`m.room.encryption` from the start).
    pub encrypted: bool,
}

/// Whether a room's Matrix side is encrypted, as its state says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEncryption {
    /// Never encrypted.
    Clear,
    /// Encrypted with a supported algorithm.
    Encrypted,
    /// Was encrypted, then its `m.room.encryption` was replaced by one
    /// without a supported algorithm. Clients and the bridge keep
    /// encrypting, but a tenant that requires encryption no longer bridges it.
    TurnedOff,
}

/// Why an encrypted Matrix event was not decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptFailure {
    /// Its room key has not reached the bridge yet; it may still.
    KeyMissing,
    /// It never will decrypt here; the reason is for the sender's notice.
    Never(String),
    /// The bridge's crypto failed for now; retrying may help.
    Failed(String),
}

/// Acting on the homeserver as the bridge bot or a ghost ("intents").
#[async_trait]
pub trait MatrixSide: Send + Sync {
    /// The bridge bot's user id.
    fn bot_user_id(&self) -> &MatrixUserId;

    /// Registers a ghost if needed and sets its profile.
    async fn ensure_ghost(&self, user: &MatrixUserId, profile: &GhostProfile) -> Result<(), BridgeError>;

    /// Creates the portal room unless its alias already exists; returns its id.
    async fn ensure_room(&self, spec: &RoomSpec) -> Result<MatrixRoomId, BridgeError>;

    /// Makes sure `user` is joined to `room` (the bot invites it first if needed).
    async fn ensure_joined(&self, room: &MatrixRoomId, user: &MatrixUserId) -> Result<(), BridgeError>;

    /// Who sent an event of a room, when the side can tell (read as the bot).
    async fn event_sender(
        &self,
        _room: &MatrixRoomId,
        _event: &MatrixEventId,
    ) -> Result<Option<MatrixUserId>, BridgeError> {
        Ok(None)
    }

    /// A member's display name in a room, for naming them on the remote side.
    async fn display_name(&self, _room: &MatrixRoomId, _user: &MatrixUserId) -> Result<Option<String>, BridgeError> {
        Ok(None)
    }

    /// Uploads media as `user` for `room` (`None`: for no room, e.g. an
    /// avatar). For an encrypted room only ciphertext is uploaded and the
    /// returned file carries its key.
    async fn upload(
        &self,
        user: &MatrixUserId,
        room: Option<&MatrixRoomId>,
        name: &str,
        media: MediaBytes,
    ) -> Result<MatrixFile, BridgeError>;

    /// Sets a state event of a room as the bridge bot (e.g. the bridge
    /// status of a portal). Idempotent: the same content twice is harmless.
    async fn set_state(
        &self,
        room: &MatrixRoomId,
        event_type: &str,
        state_key: &str,
        content: &serde_json::Value,
    ) -> Result<(), BridgeError>;

    /// Sends an event as `user` with a deterministic transaction id. Returns
    /// the event id, or `None` for events that create none (typing,
    /// presence, receipts, membership changes of the sender).
    async fn send(
        &self,
        room: &MatrixRoomId,
        user: &MatrixUserId,
        txn_id: &str,
        body: &EventBody<MatrixEventId>,
    ) -> Result<Option<MatrixEventId>, BridgeError>;

    /// Whether `room` is encrypted.
    async fn room_encryption(&self, _room: &MatrixRoomId) -> Result<RoomEncryption, BridgeError> {
        Ok(RoomEncryption::Clear)
    }

    /// The event an `EventBody::Encrypted` event carries, decrypted.
    async fn decrypt(&self, _event: &MatrixEvent) -> Result<MatrixEvent, DecryptFailure> {
        Err(DecryptFailure::Never("this bridge does not decrypt messages".into()))
    }

    /// Sends a notice into a room as a bridge user who is in it (the bot,
    /// else a ghost), with a deterministic transaction id.
    async fn notify(&self, room: &MatrixRoomId, txn_id: &str, text: &str) -> Result<(), BridgeError> {
        let notice = EventBody::Message(crate::event::Message {
            notice: true,
            ..crate::event::Message::text(crate::event::Text::plain(text))
        });
        self.send(room, self.bot_user_id(), txn_id, &notice).await.map(|_| ())
    }
}

/// What the appservice HTTP server hands to the bridge.
#[async_trait]
pub trait AppserviceHandler: Send + Sync {
    /// Persists the durable events of a transaction. Returns only after they
    /// are stored; a replayed `txn_id` stores nothing and still succeeds.
    async fn transaction(&self, txn_id: &str, events: Vec<MatrixEvent>) -> Result<(), BridgeError>;

    /// Delivers ephemeral events (typing, receipts, presence) best-effort.
    async fn ephemeral(&self, events: Vec<MatrixEvent>);

    /// Whether a user id in the namespace is (or may become) one of ours.
    async fn user_exists(&self, user: &MatrixUserId) -> bool;

    /// Whether a room alias in the namespace should exist.
    async fn alias_exists(&self, alias: &str) -> bool;
}
