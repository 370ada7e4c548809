//! Occupants of hosted rooms: joins (with the join sequence), sessions,
//! leaves after a grace period, and their presence broadcasts.

use std::sync::Arc;

use brygga_core::{EventBody, InboundEvent, Membership, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId};
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use super::messages::archive_of;
use super::record;
use super::rooms::{Join, Seen, Shown};
use super::{HISTORY_DEFAULT, HISTORY_MAX, MAX_STATUS_CHARS, known, rooms, wire};
use crate::adapter::Shared;
use crate::link::Link;

pub(super) async fn presence(
    shared: &Arc<Shared>,
    link: &Link,
    element: &Element,
    room: &BareJid,
    to: &Jid,
    from: &Jid,
) -> Vec<InboundEvent> {
    let Ok(session) = FullJid::try_from(from.clone()) else { return Vec::new() };
    match element.attr("type") {
        None => join(shared, link, element, room, to, &session).await,
        Some("unavailable" | "error") => {
            left(shared, link, room, &session).await;
            Vec::new()
        }
        _ => Vec::new(),
    }
}

pub(super) async fn join(
    shared: &Arc<Shared>,
    link: &Link,
    element: &Element,
    room: &BareJid,
    to: &Jid,
    session: &FullJid,
) -> Vec<InboundEvent> {
    let refuse = |condition| wire::presence_error(to, &Jid::from(session.clone()), condition);
    let Some(nick) = to.resource().map(|r| r.as_str().to_owned()) else {
        shared.send_quietly(link, refuse("jid-malformed")).await;
        return Vec::new();
    };
    if nick.trim().is_empty() || nick.chars().count() > rooms::MAX_NICK_CHARS || nick.chars().any(char::is_control) {
        shared.send_quietly(link, refuse("not-acceptable")).await;
        return Vec::new();
    }
    if !known(shared, room).await {
        shared.send_quietly(link, refuse("item-not-found")).await;
        return Vec::new();
    }
    let text = |name| element.get_child(name, ns::COMPONENT).map(|e| e.text().chars().take(MAX_STATUS_CHARS).collect());
    let shown = Shown { show: text("show"), status: text("status") };
    let outcome = shared.hosted.occupants.lock().expect("occupants poisoned").join(room, session, &nick, shown.clone());
    let me = Seen { nick: nick.clone(), jid: session.to_string(), shown };
    match outcome {
        Join::Refused(condition) => {
            shared.send_quietly(link, refuse(condition)).await;
            Vec::new()
        }
        Join::Updated => {
            broadcast(shared, link, room, &me, true, None).await;
            Vec::new()
        }
        Join::Renamed { from } => {
            renamed(shared, link, room, &from, &me).await;
            record::save(shared, room).await;
            let body =
                EventBody::Membership { membership: Membership::Join, display_name: Some(nick.clone()), reason: None };
            membership_event(room, &session.to_bare(), &nick, body).into_iter().collect()
        }
        Join::Joined { new_nick } => {
            // Others first, then the joiner itself, then history, then the subject.
            let others = shared.hosted.occupants.lock().expect("occupants poisoned").others(room, &nick);
            for (mut seen, matrix) in others {
                if let Some(user) = matrix {
                    seen.jid = crate::puppet::puppet_jid(&shared.domain, &user)
                        .map(|j| j.to_bare().to_string())
                        .unwrap_or_default();
                }
                if let Some(p) = wire::occupant_presence(room, session, &seen, true, &[]) {
                    shared.send_quietly(link, p).await;
                }
            }
            if let Some(p) = wire::occupant_presence(room, session, &me, true, &[100, 110]) {
                shared.send_quietly(link, p).await;
            }
            let wanted = element
                .get_child("x", ns::MUC)
                .and_then(|x| x.get_child("history", ns::MUC))
                .and_then(|h| h.attr("maxstanzas"))
                .and_then(|m| m.parse().ok())
                .unwrap_or(HISTORY_DEFAULT)
                .min(HISTORY_MAX);
            match archive_of(shared, room).await {
                Ok(archive) => {
                    let history: Vec<Element> = {
                        let archive = archive.lock().await;
                        archive.recent(wanted).into_iter().filter_map(|e| wire::history(room, session, e)).collect()
                    };
                    for message in history {
                        shared.send_quietly(link, message).await;
                    }
                }
                Err(err) => tracing::warn!(room = %room, error = %err, "hosted room archive unavailable"),
            }
            let subject = shared.hosted.occupants.lock().expect("occupants poisoned").details(room).subject;
            let from = Jid::from(room.clone());
            shared.send_quietly(link, wire::subject(&from, session, subject.as_deref().unwrap_or_default())).await;
            if !new_nick {
                return Vec::new();
            }
            broadcast(shared, link, room, &me, true, Some(session)).await;
            record::save(shared, room).await;
            let bare = session.to_bare();
            if shared.hosted.occupants.lock().expect("occupants poisoned").came_back(room, &bare) {
                return Vec::new();
            }
            let body =
                EventBody::Membership { membership: Membership::Join, display_name: Some(nick.clone()), reason: None };
            membership_event(room, &bare, &nick, body).into_iter().collect()
        }
    }
}

/// A session went away; the occupant leaves with their last session.
pub(super) async fn left(shared: &Arc<Shared>, link: &Link, room: &BareJid, session: &FullJid) {
    let Some((nick, last)) = shared.hosted.occupants.lock().expect("occupants poisoned").leave(room, session) else {
        return;
    };
    let me = Seen { nick: nick.clone(), jid: session.to_string(), shown: Shown::default() };
    if let Some(p) = wire::occupant_presence(room, session, &me, false, &[110]) {
        shared.send_quietly(link, p).await;
    }
    if last {
        broadcast(shared, link, room, &me, false, None).await;
        record::save(shared, room).await;
        schedule_leave(shared, room, &session.to_bare(), &nick);
    }
}

/// Tells every session that an occupant now goes by another nick: the old
/// nick leaves with status 303 naming the new one, the new one arrives (XEP-0045 §7.6).
async fn renamed(shared: &Shared, link: &Link, room: &BareJid, from: &str, now: &Seen) {
    let (sessions, own) = {
        let occupants = shared.hosted.occupants.lock().expect("occupants poisoned");
        (occupants.sessions(room), occupants.sessions_of(room, &now.nick))
    };
    let before = Seen { nick: from.to_owned(), ..now.clone() };
    for session in &sessions {
        let codes: &[u16] = if own.contains(session) { &[303, 110] } else { &[303] };
        if let Some(p) = wire::nick_change(room, session, &before, &now.nick, codes) {
            shared.send_quietly(link, p).await;
        }
        let codes: &[u16] = if own.contains(session) { &[110] } else { &[] };
        if let Some(p) = wire::occupant_presence(room, session, now, true, codes) {
            shared.send_quietly(link, p).await;
        }
    }
}

/// Sends an occupant's presence to every session in the room but `except`.
pub(super) async fn broadcast(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    seen: &Seen,
    available: bool,
    except: Option<&FullJid>,
) {
    let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
    for session in sessions.iter().filter(|s| Some(*s) != except) {
        if let Some(p) = wire::occupant_presence(room, session, seen, available, &[]) {
            shared.send_quietly(link, p).await;
        }
    }
}

/// Bridges an occupant's leave unless they come back within the grace period.
pub(super) fn schedule_leave(shared: &Arc<Shared>, room: &BareJid, bare: &BareJid, nick: &str) {
    let token = shared.hosted.occupants.lock().expect("occupants poisoned").leave_pending(room, bare);
    let body = EventBody::Membership { membership: Membership::Leave, display_name: None, reason: None };
    let Some(event) = membership_event(room, bare, nick, body) else { return };
    let (shared, room, bare) = (shared.clone(), room.clone(), bare.clone());
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.leave_grace()).await;
        if shared.hosted.occupants.lock().expect("occupants poisoned").leave_due(&room, &bare, token) {
            shared.route(event);
        }
    });
}

pub(super) fn ghost(bare: &BareJid, nick: &str) -> Option<RemoteSender> {
    let mut sender = RemoteSender::new(RemoteUserId::new(bare.as_str()).ok()?);
    sender.display_name = Some(nick.to_owned());
    Some(sender)
}

pub(super) fn membership_event(
    room: &BareJid,
    bare: &BareJid,
    nick: &str,
    body: EventBody<RemoteMessageId>,
) -> Option<InboundEvent> {
    let room = RemoteRoomId::new(room.as_str()).ok()?;
    Some(InboundEvent::new(room, crate::inbound::ephemeral_id(), ghost(bare, nick)?, body))
}
