//! Group chats to Matrix: occupants' messages and presences, read from the
//! listener's copy of the room's traffic.

use std::sync::Arc;

use brygga_core::{
    EventBody, InboundEvent, Membership, Presence, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId,
};
use tokio_xmpp::jid::{BareJid, FullJid};

use crate::adapter::Shared;
use crate::muc::Occupant;
use crate::stanza::{GroupMessage, OccupantPresence};

pub(super) async fn message(shared: &Shared, mut message: GroupMessage) -> Vec<InboundEvent> {
    // Every seat of ours gets a copy; the listener's is the one we read, and
    // only from rooms it is in (anyone can send a "group chat" message).
    if message.to.try_as_full().ok() != Some(&shared.listener)
        || !shared.rooms.lock().expect("rooms poisoned").is_present(&message.room, &shared.listener)
    {
        return Vec::new();
    }
    // Our puppets' messages come back as reflections, or from the archive.
    let own_id = message.origin_id.as_deref().or(message.id.as_deref());
    let ours = shared.rooms.lock().expect("rooms poisoned").is_ours(&message.room, &message.nick)
        || shared.history.lock().expect("history poisoned").was_ours(&message.room, &message.nick, own_id);
    if ours {
        if let Some(id) = own_id {
            shared.history.lock().expect("history poisoned").delivered(&message.room, id);
            shared.rooms.lock().expect("rooms poisoned").reflected(&message.room, id, message.stanza_id.clone());
        }
        return Vec::new();
    }
    if !super::body_fits(shared, &message.payload) {
        tracing::warn!(room = %message.room, "oversized XMPP message refused");
        return Vec::new();
    }
    let Some(sender) = sender(shared, &message.room, &message.nick, message.occupant_id.as_deref()) else {
        return Vec::new();
    };
    // In a group chat, messages are referred to by the room's stanza id, but
    // corrections name the sender's own id: that one is kept as an alias,
    // scoped to the sender so nobody can correct someone else's message.
    let Ok(room) = RemoteRoomId::new(message.room.as_str()) else { return Vec::new() };
    if let Some((target, keys)) = message.payload.reactions.take() {
        let Some(base) = event_id(&message.room, &message.nick, message.stanza_id.as_deref(), message.id.as_deref())
        else {
            return Vec::new();
        };
        return super::reaction_events(shared, room, base, sender, &target, keys).await;
    }
    let identity = sender.id.clone();
    let own = |id: &str| RemoteMessageId::new(format!("{identity}#{id}")).ok();
    let by_room = |id: &str| RemoteMessageId::new(id).ok();
    let Some(body) = super::body_of(message.payload, by_room, own) else { return Vec::new() };
    let event_id = match event_id(&message.room, &message.nick, message.stanza_id.as_deref(), message.id.as_deref()) {
        Some(id) => id,
        None if body.is_ephemeral() => super::ephemeral_id(),
        None => {
            tracing::warn!(room = %message.room, "XMPP message without any usable id skipped");
            return Vec::new();
        }
    };
    let mut event = InboundEvent::new(room, event_id, sender, body);
    if message.stanza_id.is_some() {
        event.aliases.extend(message.origin_id.or(message.id).as_deref().and_then(own));
    }
    vec![event]
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

/// Who an occupant is across nick changes: their real JID when the room
/// shows it, else the room's occupant id (only where the room vouches for
/// it: elsewhere anyone could claim one), else their occupant JID.
fn identity(shared: &Shared, room: &BareJid, nick: &str, real: Option<&BareJid>, occupant_id: Option<&str>) -> String {
    if let Some(jid) = real {
        return jid.to_string();
    }
    let trusted = shared.rooms.lock().expect("rooms poisoned").occupant_ids(room) == Some(true);
    match occupant_id {
        Some(id) if trusted => format!("{room}#{id}"),
        _ => format!("{room}/{nick}"),
    }
}

/// The sender of a message from `nick`: the identity the room's presence
/// gave them, else one from the message itself.
fn sender(shared: &Shared, room: &BareJid, nick: &str, occupant_id: Option<&str>) -> Option<RemoteSender> {
    let known = shared.rooms.lock().expect("rooms poisoned").occupant(room, nick).cloned();
    match known {
        Some(occupant) => ghost(&occupant.identity, nick, avatar_locator(room, nick, occupant.avatar.as_deref())),
        None => ghost(&identity(shared, room, nick, None, occupant_id), nick, None),
    }
}

fn ghost(identity: &str, nick: &str, avatar: Option<String>) -> Option<RemoteSender> {
    let mut sender = RemoteSender::new(RemoteUserId::new(identity).ok()?);
    sender.display_name = Some(nick.to_owned());
    sender.avatar = avatar;
    Some(sender)
}

/// Where an occupant's avatar is fetched: their vCard, through the room; the
/// hash makes the locator change whenever the avatar does.
fn avatar_locator(room: &BareJid, nick: &str, hash: Option<&str>) -> Option<String> {
    let hash = hash.filter(|h| !h.is_empty())?;
    Some(format!("{}{room}/{nick}#{hash}", crate::media::VCARD_SCHEME))
}

/// Bridges an occupant's presence: joins, leaves (after a grace period, so a
/// brief disconnect is no leave-and-rejoin), kicks, bans, nick changes and
/// show/status.
pub(super) fn occupant(shared: &Arc<Shared>, presence: OccupantPresence) -> Vec<InboundEvent> {
    let Ok(to) = FullJid::try_from(presence.to.clone()) else { return Vec::new() };
    let room = presence.room.clone();
    {
        let mut rooms = shared.rooms.lock().expect("rooms poisoned");
        // Only rooms our JIDs are in (or joining) speak about occupants.
        if !rooms.is_present(&room, &to) {
            return Vec::new();
        }
        if let Some(error) = &presence.error {
            rooms.left(&room, &to, Some(error));
            return Vec::new();
        }
        if presence.codes.contains(&110) {
            if presence.available {
                rooms.joined(&room, &to, &presence.nick);
            } else {
                rooms.left(&room, &to, Some("removed from the room"));
            }
            return Vec::new();
        }
        // Occupants are read from the listener's copy only; our own seats are not occupants.
        if to != shared.listener || rooms.is_ours(&room, &presence.nick) {
            return Vec::new();
        }
    }
    if presence.real_jid.as_ref().is_some_and(|real| shared.puppet_owner(real).is_some()) {
        return Vec::new();
    }
    let Ok(remote_room) = RemoteRoomId::new(room.as_str()) else { return Vec::new() };
    let avatar = avatar_locator(&room, &presence.nick, presence.photo.as_deref());
    let event = |identity: &str, body| {
        ghost(identity, &presence.nick, avatar.clone())
            .map(|sender| InboundEvent::new(remote_room.clone(), super::ephemeral_id(), sender, body))
    };
    if !presence.available {
        let mut rooms = shared.rooms.lock().expect("rooms poisoned");
        if presence.codes.contains(&303)
            && let Some(new_nick) = &presence.new_nick
        {
            rooms.occupant_renamed(&room, &presence.nick, new_nick);
            return Vec::new();
        }
        let Some(gone) = rooms.occupant_gone(&room, &presence.nick) else { return Vec::new() };
        let removal = match () {
            _ if presence.codes.contains(&301) => Some(Membership::Ban),
            _ if presence.codes.contains(&307) => Some(Membership::Kick),
            _ => None,
        };
        if let Some(membership) = removal {
            let body = EventBody::Membership { membership, display_name: None, reason: presence.reason.clone() };
            return event(&gone.identity, body).into_iter().collect();
        }
        let token = rooms.leave_pending(&room, &gone.identity);
        drop(rooms);
        let body = EventBody::Membership { membership: Membership::Leave, display_name: None, reason: None };
        if let Some(leave) = event(&gone.identity, body) {
            tokio::spawn(leave_after_grace(shared.clone(), room, gone.identity, token, leave));
        }
        return Vec::new();
    }
    let identity = identity(shared, &room, &presence.nick, presence.real_jid.as_ref(), presence.occupant_id.as_deref());
    let shown = (presence.show.clone(), presence.status.clone());
    let occupant = Occupant {
        identity: identity.clone(),
        name: presence.nick.clone(),
        presence: shown.clone(),
        avatar: presence.photo.clone(),
    };
    let before = shared.rooms.lock().expect("rooms poisoned").occupant_present(&room, &presence.nick, occupant);
    let mut events = Vec::new();
    // A join, or a new name or avatar for the ghost's profile.
    if before.as_ref().is_none_or(|b| b.name != presence.nick || b.avatar != presence.photo) {
        let body = EventBody::Membership {
            membership: Membership::Join,
            display_name: Some(presence.nick.clone()),
            reason: None,
        };
        events.extend(event(&identity, body));
    }
    if before.as_ref().map_or(shown.0.is_some() || shown.1.is_some(), |b| b.presence != shown) {
        let state = match shown.0.as_deref() {
            None | Some("chat") => Presence::Online,
            Some(_) => Presence::Unavailable,
        };
        events.extend(event(&identity, EventBody::Presence { presence: state, status: shown.1 }));
    }
    events
}

/// Bridges a leave unless the occupant came back within the grace period.
async fn leave_after_grace(shared: Arc<Shared>, room: BareJid, identity: String, token: u64, leave: InboundEvent) {
    tokio::time::sleep(shared.config.leave_grace()).await;
    let due = shared.rooms.lock().expect("rooms poisoned").leave_due(&room, &identity, token);
    if due {
        shared.route(leave);
    }
}
