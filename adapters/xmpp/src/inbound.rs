//! XMPP to Matrix: every stanza the component receives is classified and
//! either settles one of our own waits (joins, reflections), answers an iq,
//! or becomes an event pushed durably into the bridge.

use std::sync::Arc;
use std::time::Duration;

use brygga_core::{
    EventBody, InboundEvent, Membership, Message, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId, Text,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use crate::adapter::Shared;
use crate::link::Link;
use crate::muc::Occupant;
use crate::stanza::{GroupMessage, Inbound, IqKind, OccupantPresence, classify};
use crate::stanzas;

/// Reads inbound stanzas until cancelled.
pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    link: Link,
    mut inbound: mpsc::Receiver<Element>,
    cancel: CancellationToken,
) {
    loop {
        let element = tokio::select! {
            _ = cancel.cancelled() => return,
            element = inbound.recv() => match element {
                Some(element) => element,
                None => return,
            },
        };
        let events = match classify(&element) {
            Inbound::GroupMessage(message) => group_message(&shared, message),
            Inbound::Occupant(presence) => occupant(&shared, presence),
            Inbound::DirectMessage(_) => Vec::new(),
            Inbound::IqRequest { from, to, id, kind, payload } => {
                answer_iq(&shared, &link, &from, &to, &id, kind, payload.as_ref()).await;
                Vec::new()
            }
            Inbound::Ignored(why) => {
                tracing::debug!(why, "XMPP stanza ignored");
                Vec::new()
            }
        };
        for event in events {
            if !push(&shared, event, &cancel).await {
                return;
            }
        }
    }
}

/// Pushes until the store takes it: a stanza the server already delivered
/// cannot be asked for again, so it is never dropped for a transient error.
async fn push(shared: &Shared, event: InboundEvent, cancel: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(100);
    loop {
        match shared.sink.push(event.clone()).await {
            Ok(_) => return true,
            Err(err) if err.is_transient() => {
                tracing::warn!(error = %err, "storing an XMPP event failed; retrying");
            }
            Err(err) => {
                tracing::error!(error = %err, kind = event.body.kind_name(), "XMPP event refused by the bridge");
                return true;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

fn group_message(shared: &Shared, message: GroupMessage) -> Vec<InboundEvent> {
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
    let Some(body) = message.payload.body else { return Vec::new() };
    if body.len() > shared.config.max_body_bytes {
        tracing::warn!(room = %message.room, bytes = body.len(), "oversized XMPP message refused");
        return Vec::new();
    }
    let Some(event_id) = event_id(&message.room, &message.nick, message.stanza_id.as_deref(), message.id.as_deref())
    else {
        tracing::warn!(room = %message.room, "XMPP message without any usable id skipped");
        return Vec::new();
    };
    let Some(sender) = sender(shared, &message.room, &message.nick) else { return Vec::new() };
    let Ok(room) = RemoteRoomId::new(message.room.as_str()) else { return Vec::new() };
    let body = EventBody::Message(Message::text(Text::plain(body)));
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

fn occupant(shared: &Shared, presence: OccupantPresence) -> Vec<InboundEvent> {
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
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let Ok(event_id) = RemoteMessageId::new(format!("presence:{}/{}:{nonce}", presence.room, presence.nick)) else {
        return Vec::new();
    };
    let body = EventBody::Membership { membership, display_name: Some(presence.nick.clone()), reason: presence.reason };
    vec![InboundEvent { room, event_id, sender, body, room_name: None }]
}

async fn answer_iq(
    shared: &Shared,
    link: &Link,
    from: &Jid,
    to: &Jid,
    id: &str,
    kind: IqKind,
    payload: Option<&Element>,
) {
    let is_ping = kind == IqKind::Get && payload.is_some_and(|p| p.is("ping", ns::PING));
    let answer = if is_ping {
        stanzas::iq_result(to, from, id)
    } else {
        stanzas::iq_error(to, from, id, "cancel", "service-unavailable")
    };
    shared.send_quietly(link, answer).await;
}
