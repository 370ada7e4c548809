//! Matrix to hosted rooms: the sender speaks as an occupant named after
//! their display name; kicks and bans remove XMPP occupants.

use std::sync::Arc;

use brygga_core::{BridgeError, EventBody, Membership, OutboundEvent, SendReceipt};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use super::archive::Entry;
use super::messages::{archive_of, new_stanza_id, schedule_flush};
use super::occupancy::broadcast;
use super::record;
use super::rooms::{Seen, Shown};
use super::wire::CLIENT;
use super::{now_secs, wire};
use crate::adapter::Shared;
use crate::link::Link;
use crate::stanzas::MessageBuilder;

/// Delivers a Matrix event to a hosted room.
pub(crate) async fn send(shared: &Arc<Shared>, link: &Link, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    use crate::outbound::{Delivery, compose, message_id, reaction_set, receipt, remember_set};
    let room =
        BareJid::new(event.room.as_str()).map_err(|_| BridgeError::permanent("hosted room is not a bare JID"))?;
    let user = &event.sender.user_id;
    record::load(shared, &room).await?;
    match &event.body {
        EventBody::Membership { membership: Membership::Join, display_name, .. } if event.target.is_none() => {
            let name = display_name.as_deref().or(event.sender.display_name.as_deref());
            matrix_nick(shared, link, &room, user, name).await;
            return Ok(SendReceipt::default());
        }
        EventBody::Membership { membership: Membership::Leave, .. } if event.target.is_none() => {
            let nick = shared.hosted.occupants.lock().expect("occupants poisoned").matrix_left(&room, user);
            if let Some(nick) = nick {
                record::save(shared, &room).await;
                let jid = puppet_bare(shared, user);
                broadcast(shared, link, &room, &Seen { nick, jid, shown: Shown::default() }, false, None).await;
            }
            return Ok(SendReceipt::default());
        }
        EventBody::Membership { membership: membership @ (Membership::Kick | Membership::Ban), .. } => {
            let ban = *membership == Membership::Ban;
            if let Some(target) = event.target_remote.as_ref().and_then(|t| BareJid::new(t.as_str()).ok()) {
                remove(shared, link, &room, &target, ban).await;
            }
            return Ok(SendReceipt::default());
        }
        EventBody::Membership { .. } => return Ok(SendReceipt::default()),
        EventBody::RoomDetails { name, topic } => {
            details(shared, link, &room, event, name.as_deref(), topic.as_deref()).await;
            return Ok(SendReceipt::default());
        }
        _ => {}
    }
    let nick = matrix_nick(shared, link, &room, user, event.sender.display_name.as_deref()).await;
    let speaker = room.with_resource_str(&nick).map_err(|_| BridgeError::permanent("invalid nick"))?;
    let id = message_id(&event.txn_id);
    let builder = MessageBuilder::new(&speaker, &Jid::from(room.clone()), "groupchat", &id);
    let set = reaction_set(shared, event).await?;
    let Some((builder, delivery)) = compose(builder, event, shared.links.as_deref(), set.as_deref()) else {
        return Ok(SendReceipt::default());
    };
    let children: Vec<Element> = builder.build().children().cloned().collect();
    if delivery == Delivery::Ephemeral {
        let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(&room);
        for s in &sessions {
            shared
                .send_quietly(link, wire::room_message(ns::COMPONENT, &speaker, Some(s), Some(&id), &children, None))
                .await;
        }
        return receipt(&event.body, &id, None);
    }
    let handle = archive_of(shared, &room).await?;
    let stanza_id = {
        let mut archive = handle.lock().await;
        // A retry of a message the room already has is not said twice.
        if let Some(done) = archive.by_origin(user.as_str(), &id) {
            return receipt(&event.body, &done.id.clone(), Some(&id));
        }
        let stanza_id = new_stanza_id(archive.next_seq());
        let archived = wire::room_message(CLIENT, &speaker, None, Some(&id), &children, Some((&stanza_id, &room)));
        let at = now_secs();
        archive.append(Entry {
            seq: 0,
            id: stanza_id.clone(),
            at,
            sender: user.to_string(),
            origin: Some(id.clone()),
            xml: String::from(&archived),
            retracted: false,
        });
        if let EventBody::Redaction { target, .. } = &event.body {
            let from = archive
                .get(target.as_str())
                .and_then(|e| e.xml.parse::<Element>().ok())
                .and_then(|e| e.attr("from").map(str::to_owned));
            let tombstone = wire::tombstone(from.as_deref().unwrap_or(speaker.as_str()), None, &stanza_id, at);
            archive.retract(target.as_str(), tombstone);
        }
        schedule_flush(shared, &room, &handle, &mut archive);
        let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(&room);
        for s in &sessions {
            let copy =
                wire::room_message(ns::COMPONENT, &speaker, Some(s), Some(&id), &children, Some((&stanza_id, &room)));
            shared.send_quietly(link, copy).await;
        }
        stanza_id
    };
    remember_set(shared, event, set.as_deref()).await?;
    // Clients refer to it by the room's id; ours (its origin id) is kept for corrections.
    receipt(&event.body, &stanza_id, Some(&id))
}

pub(super) fn puppet_bare(shared: &Shared, user: &brygga_core::MatrixUserId) -> String {
    crate::puppet::puppet_jid(&shared.domain, user).map(|j| j.to_bare().to_string()).unwrap_or_default()
}

/// A Matrix user's nick in the room, announcing them to the room's
/// sessions when they are new there (or renamed).
pub(super) async fn matrix_nick(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    user: &brygga_core::MatrixUserId,
    display_name: Option<&str>,
) -> String {
    let wanted = display_name.map(|d| crate::puppet::nick_for(user, Some(d)));
    let (nick, before) =
        shared.hosted.occupants.lock().expect("occupants poisoned").matrix_nick(room, user, wanted.as_deref());
    if let Some(before) = before {
        record::save(shared, room).await;
        let jid = puppet_bare(shared, user);
        if !before.is_empty() {
            broadcast(
                shared,
                link,
                room,
                &Seen { nick: before, jid: jid.clone(), shown: Shown::default() },
                false,
                None,
            )
            .await;
        }
        broadcast(shared, link, room, &Seen { nick: nick.clone(), jid, shown: Shown::default() }, true, None).await;
    }
    nick
}

/// A new name or topic from Matrix: kept, and a new subject announced by
/// the occupant who set it.
async fn details(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    event: &OutboundEvent,
    name: Option<&str>,
    topic: Option<&str>,
) {
    let changed = shared.hosted.occupants.lock().expect("occupants poisoned").set_details(room, name, topic);
    record::save(shared, room).await;
    let Some(subject) = changed else { return };
    let (user, name) = (&event.sender.user_id, event.sender.display_name.as_deref());
    let nick = matrix_nick(shared, link, room, user, name).await;
    let Ok(from) = room.with_resource_str(&nick) else { return };
    let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
    for session in &sessions {
        shared.send_quietly(link, wire::subject(&Jid::from(from.clone()), session, &subject)).await;
    }
}

/// A kick or ban from Matrix: every session of the occupant is removed.
pub(super) async fn remove(shared: &Shared, link: &Link, room: &BareJid, target: &BareJid, ban: bool) {
    let removed = shared.hosted.occupants.lock().expect("occupants poisoned").remove(room, target, ban);
    record::save(shared, room).await;
    let Some((nick, sessions)) = removed else { return };
    shared.hosted.occupants.lock().expect("occupants poisoned").came_back(room, target);
    let code = if ban { 301 } else { 307 };
    let seen = Seen { nick, jid: target.to_string(), shown: Shown::default() };
    for session in &sessions {
        if let Some(p) = wire::occupant_presence(room, session, &seen, false, &[code, 110]) {
            shared.send_quietly(link, p).await;
        }
    }
    let others = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
    for session in &others {
        if let Some(p) = wire::occupant_presence(room, session, &seen, false, &[code]) {
            shared.send_quietly(link, p).await;
        }
    }
}
