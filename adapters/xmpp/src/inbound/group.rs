//! Group chats to Matrix: occupants' messages and presences, read from the
//! listener's copy of the room's traffic.

use brygga_core::{EventBody, InboundEvent, Membership, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId};
use tokio_xmpp::jid::{BareJid, FullJid};

use crate::adapter::Shared;
use crate::muc::Occupant;
use crate::stanza::{GroupMessage, OccupantPresence};

pub(super) fn message(shared: &Shared, message: GroupMessage) -> Vec<InboundEvent> {
    // Every seat of ours gets a copy; the listener's is the one we read.
    if message.to.try_as_full().ok() != Some(&shared.listener) {
        return Vec::new();
    }
    {
        let mut rooms = shared.rooms.lock().expect("rooms poisoned");
        if rooms.is_ours(&message.room, &message.nick) {
            if let Some(id) = message.origin_id.as_ref().or(message.id.as_ref()) {
                rooms.reflected(&message.room, id, message.stanza_id.clone());
            }
            return Vec::new();
        }
    }
    if message.delayed {
        return Vec::new();
    }
    if !super::body_fits(shared, &message.payload) {
        tracing::warn!(room = %message.room, "oversized XMPP message refused");
        return Vec::new();
    }
    let Some(body) = super::body_of(message.payload, |id| RemoteMessageId::new(id).ok()) else { return Vec::new() };
    let event_id = match event_id(&message.room, &message.nick, message.stanza_id.as_deref(), message.id.as_deref()) {
        Some(id) => id,
        None if body.is_ephemeral() => super::ephemeral_id(),
        None => {
            tracing::warn!(room = %message.room, "XMPP message without any usable id skipped");
            return Vec::new();
        }
    };
    let Some(sender) = sender(shared, &message.room, &message.nick) else { return Vec::new() };
    let Ok(room) = RemoteRoomId::new(message.room.as_str()) else { return Vec::new() };
    vec![InboundEvent { room, event_id, sender, body, room_name: None }]
}

/// The message's id on our side: the room's stanza id, else the sender's id
/// scoped to the occupant (sender ids are only unique per sender).
fn event_id(room: &BareJid, nick: &str, stanza_id: Option<&str>, id: Option<&str>) -> Option<RemoteMessageId> {
    let id = match (stanza_id, id) {
        (Some(stanza_id), _) => stanza_id.to_owned(),
        (None, Some(id)) => format!("{room}/{nick}#{id}"),
        (None, None) => return None,
    };
    RemoteMessageId::new(id).ok()
}

/// The ghost identity of an occupant: their real JID when the room shows
/// it, else their occupant JID.
fn sender(shared: &Shared, room: &BareJid, nick: &str) -> Option<RemoteSender> {
    let real = shared.rooms.lock().expect("rooms poisoned").occupant(room, nick).and_then(|o| o.real_jid.clone());
    let id = match real {
        Some(jid) => jid.to_string(),
        None => format!("{room}/{nick}"),
    };
    let mut sender = RemoteSender::new(RemoteUserId::new(id).ok()?);
    sender.display_name = Some(nick.to_owned());
    Some(sender)
}

pub(super) fn occupant(shared: &Shared, presence: OccupantPresence) -> Vec<InboundEvent> {
    let Ok(to) = FullJid::try_from(presence.to.clone()) else { return Vec::new() };
    let is_listener = to == shared.listener;
    let self_presence = presence.codes.contains(&110);
    let mut rooms = shared.rooms.lock().expect("rooms poisoned");
    if let Some(error) = &presence.error {
        rooms.left(&presence.room, &to, Some(error));
        return Vec::new();
    }
    if self_presence {
        if presence.available {
            rooms.joined(&presence.room, &to, &presence.nick);
        } else {
            rooms.left(&presence.room, &to, Some("removed from the room"));
        }
        return Vec::new();
    }
    // Occupants are read from the listener's copy only; our own seats are not occupants.
    if !is_listener || rooms.is_ours(&presence.room, &presence.nick) {
        return Vec::new();
    }
    if let Some(real) = &presence.real_jid
        && shared.puppet_owner(real).is_some()
    {
        return Vec::new();
    }
    let membership = if presence.available {
        let occupant = Occupant { real_jid: presence.real_jid.clone() };
        if !rooms.occupant_present(&presence.room, &presence.nick, occupant) {
            return Vec::new();
        }
        Membership::Join
    } else {
        if rooms.occupant_gone(&presence.room, &presence.nick).is_none() {
            return Vec::new();
        }
        match () {
            _ if presence.codes.contains(&301) => Membership::Ban,
            _ if presence.codes.contains(&307) => Membership::Kick,
            _ => Membership::Leave,
        }
    };
    drop(rooms);
    let Some(mut sender) = sender(shared, &presence.room, &presence.nick) else { return Vec::new() };
    if let Some(real) = &presence.real_jid {
        sender.id = RemoteUserId::new(real.as_str()).unwrap_or(sender.id);
    }
    let Ok(room) = RemoteRoomId::new(presence.room.as_str()) else { return Vec::new() };
    let event_id = super::ephemeral_id();
    let body = EventBody::Membership { membership, display_name: Some(presence.nick.clone()), reason: presence.reason };
    vec![InboundEvent { room, event_id, sender, body, room_name: None }]
}
