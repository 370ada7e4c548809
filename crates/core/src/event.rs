//! The canonical event model, shared by both directions.
//!
//! `EventBody<R>` is generic over how other messages are referenced: remote
//! events refer to `RemoteMessageId`s, Matrix events to `MatrixEventId`s. The
//! router translates one into the other through the message map, so adapters
//! only ever see remote ids.

use serde::{Deserialize, Serialize};

use crate::matrix_file::MatrixFile;

use crate::ids::{MatrixEventId, MatrixRoomId, MatrixUserId, RemoteMessageId, RemoteRoomId, RemoteUserId};

/// Message text: plain body plus optional sanitised HTML.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// Plain-text body, always present.
    pub body: String,
    /// HTML rendering (Matrix `formatted_body`), if the message has formatting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl Text {
    /// Plain text without formatting.
    pub fn plain(body: impl Into<String>) -> Self {
        Self { body: body.into(), html: None }
    }

    /// Names a file that did not cross, on a line of its own, so the other
    /// side knows it was left out (drops the HTML, which would not say so).
    pub fn name_file_left_out(&mut self, name: &str) {
        let line = format!("[file not bridged: {name}]");
        self.body = if self.body.is_empty() { line } else { format!("{}\n{line}", self.body) };
        self.html = None;
    }
}

/// Where the bytes of an attachment can be fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaSource {
    /// Matrix content repository (`mxc://server/id`), with the key when the
    /// file is encrypted.
    Matrix(MatrixFile),
    /// Something the adapter can fetch: a URL or platform-specific locator.
    Remote { locator: String },
}

/// A file, image, audio or video attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name shown to users.
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where the bytes are.
    pub source: MediaSource,
}

/// A message, with references to other messages of type `R`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
pub struct Message<R> {
    /// The text; may be empty when the message is only attachments.
    pub text: Text,
    /// Attached files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<R>,
    /// The root of the thread this message belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<R>,
    /// True for emotes (`/me`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emote: bool,
    /// True for bot or system notices.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

impl<R> Message<R> {
    /// A plain text message.
    pub fn text(text: Text) -> Self {
        Self { text, attachments: Vec::new(), reply_to: None, thread_root: None, emote: false, notice: false }
    }
}

/// A membership change of the event's sender (or of `target` when set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Membership {
    /// Joined the conversation.
    Join,
    /// Left it.
    Leave,
    /// Was invited.
    Invite,
    /// Was removed by someone else.
    Kick,
    /// Was banned.
    Ban,
}

/// Online state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Presence {
    /// Available.
    Online,
    /// Away, busy or idle.
    Unavailable,
    /// Offline.
    Offline,
}

/// What happened, independent of platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", bound(deserialize = "R: Deserialize<'de>"))]
#[non_exhaustive]
pub enum EventBody<R> {
    /// A new message.
    Message(Message<R>),
    /// A correction of an earlier message.
    Edit {
        /// The message being corrected.
        target: R,
        /// Its new content.
        text: Text,
    },
    /// Removal of an earlier message.
    Redaction {
        /// The message being removed.
        target: R,
        /// Optional reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A reaction added to, or removed from, a message.
    Reaction {
        /// The message reacted to.
        target: R,
        /// The reaction key, usually an emoji.
        key: String,
        /// True when the reaction is taken back.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        removed: bool,
    },
    /// A membership change.
    Membership {
        /// The new membership.
        membership: Membership,
        /// Shown name at the time of the change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// Reason for leaves, kicks and bans.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Presence of the sender.
    Presence {
        /// Online state.
        presence: Presence,
        /// Free-text status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
    /// The sender started or stopped typing.
    Typing {
        /// True while typing.
        typing: bool,
    },
    /// The sender has read up to a message.
    ReadReceipt {
        /// The last message read.
        up_to: R,
    },
    /// The room's name or topic changed (`None`: unchanged; empty: cleared).
    RoomDetails {
        /// The new name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The new topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    /// A Matrix event still end-to-end encrypted: the router decrypts it
    /// when it is delivered (its key may arrive after it). Never reaches an adapter.
    Encrypted {
        /// The whole `m.room.encrypted` event as the homeserver sent it.
        event_json: String,
    },
    /// The Matrix room's `m.room.encryption` state changed: for the
    /// tenant's encryption policy and the bridge info. Never reaches an adapter.
    RoomEncryption {
        /// Whether it names an algorithm the bridge speaks (false: turned off).
        enabled: bool,
    },
}

impl<R> EventBody<R> {
    /// Ephemeral events are best-effort: not stored, not retried.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Self::Presence { .. } | Self::Typing { .. } | Self::ReadReceipt { .. })
    }

    /// The same event with another reference type, for the variants that
    /// reference no message (membership, presence, typing); `None` otherwise.
    pub fn without_references<S>(self) -> Option<EventBody<S>> {
        match self {
            Self::Membership { membership, display_name, reason } => {
                Some(EventBody::Membership { membership, display_name, reason })
            }
            Self::Presence { presence, status } => Some(EventBody::Presence { presence, status }),
            Self::Typing { typing } => Some(EventBody::Typing { typing }),
            Self::RoomDetails { name, topic } => Some(EventBody::RoomDetails { name, topic }),
            Self::Message(_) | Self::Edit { .. } | Self::Redaction { .. } | Self::Reaction { .. } => None,
            Self::ReadReceipt { .. } | Self::Encrypted { .. } | Self::RoomEncryption { .. } => None,
        }
    }

    /// A short name of the variant, for logs and metrics (never the content).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Message(_) => "message",
            Self::Edit { .. } => "edit",
            Self::Redaction { .. } => "redaction",
            Self::Reaction { .. } => "reaction",
            Self::Membership { .. } => "membership",
            Self::Presence { .. } => "presence",
            Self::Typing { .. } => "typing",
            Self::ReadReceipt { .. } => "read_receipt",
            Self::RoomDetails { .. } => "room_details",
            Self::Encrypted { .. } => "encrypted",
            Self::RoomEncryption { .. } => "room_encryption",
        }
    }
}

/// Who sent a remote event, as far as the adapter knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSender {
    /// The remote user's id.
    pub id: RemoteUserId,
    /// Name to show on the ghost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Avatar the adapter can fetch (a media locator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

impl RemoteSender {
    /// A sender known only by id.
    pub fn new(id: RemoteUserId) -> Self {
        Self { id, display_name: None, avatar: None }
    }
}

/// An event from a remote platform, pushed by an adapter (remote to Matrix).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEvent {
    /// The remote room it happened in.
    pub room: RemoteRoomId,
    /// A unique id of this event on the remote side, for deduplication. For
    /// a new message this is its message id; edits and other events need
    /// their own unique id.
    pub event_id: RemoteMessageId,
    /// Who did it.
    pub sender: RemoteSender,
    /// What happened.
    pub body: EventBody<RemoteMessageId>,
    /// Room name, so a new portal can be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// Other ids the remote side may use to refer to this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<RemoteMessageId>,
}

impl InboundEvent {
    /// An event without a room name or aliases.
    pub fn new(
        room: RemoteRoomId,
        event_id: RemoteMessageId,
        sender: RemoteSender,
        body: EventBody<RemoteMessageId>,
    ) -> Self {
        Self { room, event_id, sender, body, room_name: None, aliases: Vec::new() }
    }
}

/// Who sent a Matrix event, as shown to the remote side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixSender {
    /// The Matrix user.
    pub user_id: MatrixUserId,
    /// Display name in the room, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An event from Matrix, parsed from an appservice transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixEvent {
    /// The room it happened in.
    pub room_id: MatrixRoomId,
    /// The event id (for ephemeral events, a synthetic unique id).
    pub event_id: MatrixEventId,
    /// Who did it.
    pub sender: MatrixUserId,
    /// Server timestamp in milliseconds.
    pub origin_server_ts: i64,
    /// For membership events: whose membership changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_key: Option<String>,
    /// For invites: the inviter marked the room as a direct chat (`is_direct`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub direct: bool,
    /// What happened.
    pub body: EventBody<MatrixEventId>,
}

/// An event for an adapter to deliver (Matrix to remote).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundEvent {
    /// The remote room to deliver to.
    pub room: RemoteRoomId,
    /// Deterministic idempotency key: the same event always has the same key,
    /// so an adapter can make a retried send a no-op.
    pub txn_id: String,
    /// Who sent it on Matrix.
    pub sender: MatrixSender,
    /// For membership events about another user: who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<MatrixSender>,
    /// When that user is a ghost of this platform: who they are there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_remote: Option<RemoteUserId>,
    /// What to deliver, with references already mapped to remote ids.
    pub body: EventBody<RemoteMessageId>,
    /// Other ids of the message the event targets (edit, redaction, reaction,
    /// receipt), for platforms that refer to it differently by purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_aliases: Vec<RemoteMessageId>,
}

/// What an adapter created for an outbound event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReceipt {
    /// Remote message ids, one per part, in order. Empty for events that
    /// create nothing addressable (typing, presence).
    pub remote_ids: Vec<RemoteMessageId>,
    /// Other ids the remote side knows the first part by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<RemoteMessageId>,
}

impl SendReceipt {
    /// A receipt for a single created message.
    pub fn one(id: RemoteMessageId) -> Self {
        Self { remote_ids: vec![id], aliases: Vec::new() }
    }
}

/// Where a reference points when the event arrives, used by the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference<'a, R> {
    /// The event replies to this message.
    ReplyTo(&'a R),
    /// The event is in this thread.
    Thread(&'a R),
    /// The event modifies this message.
    Target(&'a R),
}

impl<R> EventBody<R> {
    /// Every message this event refers to.
    pub fn references(&self) -> Vec<Reference<'_, R>> {
        match self {
            Self::Message(m) => {
                m.reply_to.iter().map(Reference::ReplyTo).chain(m.thread_root.iter().map(Reference::Thread)).collect()
            }
            Self::Edit { target, .. } | Self::Redaction { target, .. } | Self::Reaction { target, .. } => {
                vec![Reference::Target(target)]
            }
            Self::ReadReceipt { up_to } => vec![Reference::Target(up_to)],
            Self::Membership { .. }
            | Self::Presence { .. }
            | Self::Typing { .. }
            | Self::RoomDetails { .. }
            | Self::Encrypted { .. }
            | Self::RoomEncryption { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_bodies_round_trip_as_tagged_json() {
        let body: EventBody<RemoteMessageId> =
            EventBody::Reaction { target: RemoteMessageId::new("m1").unwrap(), key: "👍".into(), removed: false };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["type"], "reaction");
        assert_eq!(json["target"], "m1");
        let back: EventBody<RemoteMessageId> = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn ephemeral_events_are_classified() {
        let typing: EventBody<RemoteMessageId> = EventBody::Typing { typing: true };
        assert!(typing.is_ephemeral());
        let msg: EventBody<RemoteMessageId> = EventBody::Message(Message::text(Text::plain("hi")));
        assert!(!msg.is_ephemeral());
        assert_eq!(msg.kind_name(), "message");
    }

    #[test]
    fn reference_free_events_change_reference_type() {
        let typing: EventBody<RemoteMessageId> = EventBody::Typing { typing: true };
        assert_eq!(typing.without_references::<String>(), Some(EventBody::Typing { typing: true }));
        let edit: EventBody<String> = EventBody::Edit { target: "m".into(), text: Text::plain("x") };
        assert_eq!(edit.without_references::<RemoteMessageId>(), None);
    }

    #[test]
    fn references_list_reply_and_thread() {
        let mut m = Message::text(Text::plain("x"));
        m.reply_to = Some(RemoteMessageId::new("a").unwrap());
        m.thread_root = Some(RemoteMessageId::new("b").unwrap());
        let body = EventBody::Message(m);
        assert_eq!(body.references().len(), 2);
    }

    #[test]
    fn unknown_event_types_fail_to_parse() {
        let bad = serde_json::json!({"type": "teleport", "target": "x"});
        assert!(serde_json::from_value::<EventBody<RemoteMessageId>>(bad).is_err());
    }
}
