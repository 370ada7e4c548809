//! What an [`E2eeUser`](super::E2eeUser) received: every message-like timeline
//! event of its joined rooms, in arrival order, with how it was encrypted.

use std::pin::Pin;
use std::sync::Mutex;

use matrix_sdk::deserialized_responses::{TimelineEvent, TimelineEventKind};
use matrix_sdk::ruma::events::AnySyncTimelineEvent;
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::sync::SyncResponse;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// How a received event travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encryption {
    /// Sent in the clear.
    Plaintext,
    /// Arrived as `m.room.encrypted` and decrypted.
    Decrypted {
        /// The sending device, as the Megolm session names it.
        sender_device: Option<String>,
    },
    /// Arrived as `m.room.encrypted` already redacted: nothing left to decrypt.
    Redacted,
    /// Arrived as `m.room.encrypted` and could not be decrypted.
    Undecryptable {
        /// Why, as matrix-sdk reports it.
        reason: String,
    },
}

/// One timeline event as the user sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceivedEvent {
    /// The room it arrived in.
    pub room_id: String,
    /// Its event id.
    pub event_id: String,
    /// Its sender.
    pub sender: String,
    /// The decrypted event type (`m.room.encrypted` when undecryptable).
    pub event_type: String,
    /// The decrypted content.
    pub content: Value,
    /// The whole event JSON, decrypted where possible.
    pub event: Value,
    /// Whether it came encrypted and decrypted.
    pub encryption: Encryption,
    /// For a file, image, audio or video message: the downloaded, decrypted bytes.
    pub file: Option<Vec<u8>>,
}

impl ReceivedEvent {
    /// Reads a message-like event; state events (which cannot be encrypted) and
    /// events without the basic fields give `None`.
    pub(crate) fn from_timeline(room_id: &str, timeline: &TimelineEvent) -> Option<Self> {
        let event: Value = serde_json::from_str(timeline.raw().json().get()).ok()?;
        if event.get("state_key").is_some() {
            return None;
        }
        let encryption = match &timeline.kind {
            TimelineEventKind::Decrypted(decrypted) => Encryption::Decrypted {
                sender_device: decrypted.encryption_info.sender_device.as_ref().map(ToString::to_string),
            },
            TimelineEventKind::UnableToDecrypt { utd_info, .. } => {
                Encryption::Undecryptable { reason: format!("{:?}", utd_info.reason) }
            }
            TimelineEventKind::PlainText { .. } if event["type"] == "m.room.encrypted" => Encryption::Redacted,
            TimelineEventKind::PlainText { .. } => Encryption::Plaintext,
        };
        Some(Self {
            room_id: room_id.to_owned(),
            event_id: event["event_id"].as_str()?.to_owned(),
            sender: event["sender"].as_str()?.to_owned(),
            event_type: event["type"].as_str()?.to_owned(),
            content: event.get("content").cloned().unwrap_or(Value::Null),
            event,
            encryption,
            file: None,
        })
    }

    /// Whether it arrived as `m.room.encrypted`, decryptable or not.
    pub fn was_encrypted(&self) -> bool {
        !matches!(self.encryption, Encryption::Plaintext)
    }

    /// Whether it arrived encrypted and could not be decrypted.
    pub fn is_undecryptable(&self) -> bool {
        matches!(self.encryption, Encryption::Undecryptable { .. })
    }

    /// The message body, if any.
    pub fn body(&self) -> Option<&str> {
        self.content["body"].as_str()
    }

    /// The relation's type and target (`m.replace`, `m.annotation`; replies as `m.in_reply_to`).
    pub fn relation(&self) -> Option<(&str, &str)> {
        let relates_to = &self.content["m.relates_to"];
        if let Some(target) = relates_to["m.in_reply_to"]["event_id"].as_str() {
            return Some(("m.in_reply_to", target));
        }
        Some((relates_to["rel_type"].as_str()?, relates_to["event_id"].as_str()?))
    }

    /// The event a redaction removes (room v11 keeps it in the content, older versions beside it).
    pub fn redacts(&self) -> Option<&str> {
        self.content["redacts"].as_str().or_else(|| self.event["redacts"].as_str())
    }
}

/// A received event and the wire form it can be decrypted again from.
struct Slot {
    event: ReceivedEvent,
    raw: Raw<AnySyncTimelineEvent>,
    taken: bool,
}

/// Every recorded event; waiters are woken on each arrival.
#[derive(Default)]
pub(crate) struct Inbox {
    slots: Mutex<Vec<Slot>>,
    arrived: Notify,
}

/// The first untaken event matching a query, and its position.
pub(crate) struct Found {
    pub index: usize,
    pub event: ReceivedEvent,
    pub raw: Raw<AnySyncTimelineEvent>,
}

impl Inbox {
    /// Records the timeline events of a sync's joined rooms.
    pub fn record(&self, response: &SyncResponse) {
        let mut slots = self.slots.lock().expect("inbox lock");
        for (room_id, update) in &response.rooms.joined {
            for timeline in &update.timeline.events {
                if let Some(event) = ReceivedEvent::from_timeline(room_id.as_str(), timeline) {
                    slots.push(Slot { event, raw: timeline.raw().clone(), taken: false });
                }
            }
        }
        drop(slots);
        self.arrived.notify_waiters();
    }

    /// The first untaken event from `sender` in `room` that `wanted` accepts.
    pub fn find(&self, room: &str, sender: &str, wanted: &dyn Fn(&ReceivedEvent) -> bool) -> Option<Found> {
        let slots = self.slots.lock().expect("inbox lock");
        slots.iter().enumerate().find_map(|(index, slot)| {
            let e = &slot.event;
            let matches = !slot.taken && e.room_id == room && e.sender == sender && wanted(e);
            matches.then(|| Found { index, event: e.clone(), raw: slot.raw.clone() })
        })
    }

    /// Marks an event as handed out.
    pub fn take(&self, index: usize) {
        self.slots.lock().expect("inbox lock")[index].taken = true;
    }

    /// Replaces an event after a later decryption succeeded.
    pub fn replace(&self, index: usize, event: ReceivedEvent) {
        self.slots.lock().expect("inbox lock")[index].event = event;
    }

    /// Every recorded event from `sender` in `room` (handed out or not), with its position.
    pub fn all_from(&self, room: &str, sender: &str) -> Vec<Found> {
        let slots = self.slots.lock().expect("inbox lock");
        let from = |slot: &&Slot| slot.event.room_id == room && slot.event.sender == sender;
        slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| from(slot))
            .map(|(index, slot)| Found { index, event: slot.event.clone(), raw: slot.raw.clone() })
            .collect()
    }

    /// Resolves on the next arrival; create it before searching so no arrival is missed.
    pub fn arrival(&self) -> Pin<Box<Notified<'_>>> {
        let mut notified = Box::pin(self.arrived.notified());
        // Registers the waiter now rather than at the first poll.
        notified.as_mut().enable();
        notified
    }
}
