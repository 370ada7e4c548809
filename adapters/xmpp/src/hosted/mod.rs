//! Group chats the component hosts itself: a portal whose remote room is a
//! bare JID under the tenant's own component domain (`town@matrix.example`)
//! is served by the bridge as a MUC service (XEP-0045), with its archive in
//! the bridge's own store, answering MAM (XEP-0313) and disco.
//!
//! Choices: rooms are public, open, persistent and non-anonymous (occupants
//! see each other's real JIDs, as Matrix users see the ghosts' JIDs anyway;
//! self-presence carries status 100 and 110). Anyone may query a room's
//! archive, as anyone may join it and see its history. XMPP occupants get a
//! ghost named after their bare JID (the same as in one-to-one chats) with
//! their nick as display name. Nick changes are refused (`not-acceptable`).

mod archive;
mod rooms;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brygga_core::{
    BridgeError, EventBody, InboundEvent, Membership, OutboundEvent, RemoteMessageId, RemoteRoomId, RemoteSender,
    RemoteUserId, SendReceipt,
};
use tokio_xmpp::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use self::archive::{Archive, Entry, Query};
use self::rooms::{Join, Occupants, Seen, Shown};
use self::wire::CLIENT;
use crate::adapter::Shared;
use crate::link::Link;
use crate::stanzas::{self, Disco, MessageBuilder};

/// The portal list is re-read at most this often for an unknown room.
const REFRESH_MIN: Duration = Duration::from_secs(1);
/// A known room is re-checked after this long (it may have been unlinked).
const REFRESH_MAX: Duration = Duration::from_secs(30);
/// History sent on join unless the client asks for less.
const HISTORY_DEFAULT: usize = 20;
/// Most history sent on join.
const HISTORY_MAX: usize = 50;
/// Archive writes are gathered for this long.
const FLUSH_DELAY: Duration = Duration::from_millis(300);
/// Longest status text kept per session, in characters.
const MAX_STATUS_CHARS: usize = 1024;

/// What a room says about itself in disco#info.
const ROOM_FEATURES: &[&str] = &[
    ns::MUC,
    ns::MAM,
    ns::SID,
    ns::DISCO_INFO,
    ns::PING,
    "muc_public",
    "muc_open",
    "muc_persistent",
    "muc_nonanonymous",
    "muc_unmoderated",
    "muc_unsecured",
];

/// The hosted rooms of one adapter.
#[derive(Default)]
pub(crate) struct Hosted {
    occupants: Mutex<Occupants>,
    archives: Mutex<HashMap<BareJid, Arc<tokio::sync::Mutex<Archive>>>>,
    known: Mutex<Known>,
}

/// The hosted rooms among the portals, as last read.
#[derive(Default)]
struct Known {
    rooms: HashSet<BareJid>,
    refreshed: Option<Instant>,
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Whether a portal room is hosted by the component (a JID under its own domain).
pub(crate) fn is_hosted(shared: &Shared, room: &str) -> bool {
    BareJid::new(room).is_ok_and(|jid| jid.node().is_some() && jid.domain() == shared.domain.domain())
}

/// Whether `room` is a hosted room with a portal.
async fn known(shared: &Shared, room: &BareJid) -> bool {
    let refresh = {
        let known = shared.hosted.known.lock().expect("known poisoned");
        let age = known.refreshed.map(|t| t.elapsed());
        if known.rooms.contains(room) && age.is_some_and(|a| a < REFRESH_MAX) {
            return true;
        }
        age.is_none_or(|a| a >= REFRESH_MIN)
    };
    if refresh {
        match shared.portals.rooms().await {
            Ok(rooms) => {
                let rooms = rooms
                    .iter()
                    .filter(|r| is_hosted(shared, r.as_str()))
                    .filter_map(|r| BareJid::new(r.as_str()).ok())
                    .collect();
                *shared.hosted.known.lock().expect("known poisoned") = Known { rooms, refreshed: Some(Instant::now()) };
            }
            Err(err) => tracing::warn!(error = %err, "listing hosted rooms failed"),
        }
    }
    shared.hosted.known.lock().expect("known poisoned").rooms.contains(room)
}

/// Forgets the occupants of an earlier connection (they rejoin); their
/// leaves are bridged unless they come back within the grace period.
pub(crate) fn sync(shared: &Arc<Shared>, link: &Link) {
    let generation = link.state().borrow().generation;
    let gone = shared.hosted.occupants.lock().expect("occupants poisoned").sync_generation(generation);
    for (room, bare, nick) in gone {
        schedule_leave(shared, &room, &bare, &nick);
    }
}

/// Handles a stanza addressed to a hosted room (or to a JID that could be
/// one); `None` when it is not ours to handle.
pub(crate) async fn inbound(shared: &Arc<Shared>, link: &Link, element: &Element) -> Option<Vec<InboundEvent>> {
    if element.ns() != ns::COMPONENT {
        return None;
    }
    let to = Jid::new(element.attr("to")?).ok()?;
    let room = to.to_bare();
    if room.node().is_none() || room.domain() != shared.domain.domain() || shared.puppet_owner(&room).is_some() {
        return None;
    }
    let Some(from) = element.attr("from").and_then(|f| Jid::new(f).ok()) else { return Some(Vec::new()) };
    // Nothing under our own domain talks to our rooms.
    if from.domain() == shared.domain.domain() {
        return Some(Vec::new());
    }
    sync(shared, link);
    let events = match element.name() {
        "presence" => presence(shared, link, element, &room, &to, &from).await,
        "message" => message(shared, link, element, &room, &to, &from).await,
        "iq" => {
            iq(shared, link, element, &room, &to, &from).await;
            Vec::new()
        }
        _ => Vec::new(),
    };
    Some(events)
}

async fn presence(
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

async fn join(
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
            shared.send_quietly(link, wire::subject(room, session, "")).await;
            if !new_nick {
                return Vec::new();
            }
            broadcast(shared, link, room, &me, true, Some(session)).await;
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
async fn left(shared: &Arc<Shared>, link: &Link, room: &BareJid, session: &FullJid) {
    let Some((nick, last)) = shared.hosted.occupants.lock().expect("occupants poisoned").leave(room, session) else {
        return;
    };
    let me = Seen { nick: nick.clone(), jid: session.to_string(), shown: Shown::default() };
    if let Some(p) = wire::occupant_presence(room, session, &me, false, &[110]) {
        shared.send_quietly(link, p).await;
    }
    if last {
        broadcast(shared, link, room, &me, false, None).await;
        schedule_leave(shared, room, &session.to_bare(), &nick);
    }
}

/// Sends an occupant's presence to every session in the room but `except`.
async fn broadcast(
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
fn schedule_leave(shared: &Arc<Shared>, room: &BareJid, bare: &BareJid, nick: &str) {
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

fn ghost(bare: &BareJid, nick: &str) -> Option<RemoteSender> {
    let mut sender = RemoteSender::new(RemoteUserId::new(bare.as_str()).ok()?);
    sender.display_name = Some(nick.to_owned());
    Some(sender)
}

fn membership_event(
    room: &BareJid,
    bare: &BareJid,
    nick: &str,
    body: EventBody<RemoteMessageId>,
) -> Option<InboundEvent> {
    let room = RemoteRoomId::new(room.as_str()).ok()?;
    Some(InboundEvent::new(room, crate::inbound::ephemeral_id(), ghost(bare, nick)?, body))
}

/// The room's archive, loaded.
async fn archive_of(shared: &Shared, room: &BareJid) -> Result<Arc<tokio::sync::Mutex<Archive>>, BridgeError> {
    let archive = shared.hosted.archives.lock().expect("archives poisoned").entry(room.clone()).or_default().clone();
    archive.lock().await.load(shared.state.as_ref(), room).await?;
    Ok(archive)
}

/// Writes the archive soon (writes of a burst are gathered).
fn schedule_flush(shared: &Shared, room: &BareJid, handle: &Arc<tokio::sync::Mutex<Archive>>, archive: &mut Archive) {
    if archive.flushing {
        return;
    }
    archive.flushing = true;
    let (state, handle, room) = (shared.state.clone(), handle.clone(), room.clone());
    tokio::spawn(async move {
        tokio::time::sleep(FLUSH_DELAY).await;
        let mut archive = handle.lock().await;
        archive.flushing = false;
        if let Err(err) = archive.flush(state.as_ref(), &room).await {
            tracing::warn!(room = %room, error = %err, "writing a hosted room's archive failed; retried with the next message");
        }
    });
}

/// A stanza id of ours, unique across rooms and restarts.
fn new_stanza_id(seq: u64) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{nanos:x}-{seq}")
}

async fn message(
    shared: &Arc<Shared>,
    link: &Link,
    element: &Element,
    room: &BareJid,
    to: &Jid,
    from: &Jid,
) -> Vec<InboundEvent> {
    let Ok(session) = FullJid::try_from(from.clone()) else { return Vec::new() };
    let id_attr = element.attr("id");
    let bounce = |condition| wire::message_error(to, from, id_attr, condition);
    match element.attr("type") {
        // A session that bounces the room's messages is gone.
        Some("error") => {
            left(shared, link, room, &session).await;
            return Vec::new();
        }
        Some("groupchat") if to.resource().is_none() => {}
        _ => {
            shared.send_quietly(link, bounce("feature-not-implemented")).await;
            return Vec::new();
        }
    }
    let Some(nick) = shared.hosted.occupants.lock().expect("occupants poisoned").nick_of(room, &session) else {
        shared.send_quietly(link, bounce("not-acceptable")).await;
        return Vec::new();
    };
    let mut payload = crate::payload::read(element);
    if !crate::inbound::body_fits(shared, &payload) {
        shared.send_quietly(link, bounce("not-acceptable")).await;
        return Vec::new();
    }
    if payload.body.is_none() && element.has_child("subject", ns::COMPONENT) {
        shared.send_quietly(link, bounce("forbidden")).await;
        return Vec::new();
    }
    let bare = session.to_bare();
    let identity = bare.to_string();
    let Ok(occupant) = room.with_resource_str(&nick) else { return Vec::new() };
    let Ok(remote_room) = RemoteRoomId::new(room.as_str()) else { return Vec::new() };
    let Some(sender) = ghost(&bare, &nick) else { return Vec::new() };
    let children = wire::reflectable(element);
    let origin = element.get_child("origin-id", ns::SID).and_then(|o| o.attr("id")).or(id_attr).map(str::to_owned);
    let durable = payload.body.is_some()
        || payload.retraction.is_some()
        || payload.replace.is_some()
        || payload.reactions.is_some()
        || !payload.oob_urls.is_empty();
    let own = |id: &str| RemoteMessageId::new(format!("{identity}#{id}")).ok();
    let by_room = |id: &str| RemoteMessageId::new(id).ok();
    if !durable {
        // Chat states and markers: reflected, not archived.
        let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
        for s in &sessions {
            shared
                .send_quietly(link, wire::room_message(ns::COMPONENT, &occupant, Some(s), id_attr, &children, None))
                .await;
        }
        let Some(body) = crate::inbound::body_of(payload, by_room, own) else { return Vec::new() };
        return vec![InboundEvent::new(remote_room, crate::inbound::ephemeral_id(), sender, body)];
    }
    let handle = match archive_of(shared, room).await {
        Ok(handle) => handle,
        Err(err) => {
            tracing::warn!(room = %room, error = %err, "hosted room archive unavailable");
            shared.send_quietly(link, bounce("internal-server-error")).await;
            return Vec::new();
        }
    };
    let stanza_id = {
        let mut archive = handle.lock().await;
        // A retraction names the room's stanza id (or, from older clients,
        // the sender's own id); only one's own messages can be retracted.
        let mut retracted = None;
        if let Some(retraction) = &mut payload.retraction {
            let target = archive.get(&retraction.id).or_else(|| archive.by_origin(&identity, &retraction.id)).cloned();
            match target {
                Some(target) if target.sender == identity => {
                    retraction.id = target.id.clone();
                    retracted = Some(target);
                }
                Some(_) => {
                    drop(archive);
                    shared.send_quietly(link, bounce("forbidden")).await;
                    return Vec::new();
                }
                None => {}
            }
        }
        let stanza_id = new_stanza_id(archive.next_seq());
        let archived = wire::room_message(CLIENT, &occupant, None, id_attr, &children, Some((&stanza_id, room)));
        let at = now_secs();
        archive.append(Entry {
            seq: 0,
            id: stanza_id.clone(),
            at,
            sender: identity.clone(),
            origin: origin.clone(),
            xml: String::from(&archived),
            retracted: false,
        });
        if let Some(target) = retracted {
            let from = FullJid::new(
                &target.xml.parse::<Element>().ok().and_then(|e| e.attr("from").map(str::to_owned)).unwrap_or_default(),
            )
            .unwrap_or_else(|_| occupant.clone());
            archive.retract(&target.id, wire::tombstone(from.as_str(), None, &stanza_id, at));
        }
        schedule_flush(shared, room, &handle, &mut archive);
        let sessions = shared.hosted.occupants.lock().expect("occupants poisoned").sessions(room);
        for s in &sessions {
            let copy =
                wire::room_message(ns::COMPONENT, &occupant, Some(s), id_attr, &children, Some((&stanza_id, room)));
            shared.send_quietly(link, copy).await;
        }
        stanza_id
    };
    let Ok(event_id) = RemoteMessageId::new(stanza_id.as_str()) else { return Vec::new() };
    if let Some((target, keys)) = payload.reactions.take() {
        return crate::inbound::reaction_events(shared, remote_room, event_id, sender, &target, keys).await;
    }
    let Some(body) = crate::inbound::body_of(payload, by_room, own) else { return Vec::new() };
    let mut event = InboundEvent::new(remote_room, event_id, sender, body);
    event.aliases.extend(origin.as_deref().and_then(own));
    vec![event]
}

async fn iq(shared: &Shared, link: &Link, element: &Element, room: &BareJid, to: &Jid, from: &Jid) {
    let Some(id) = element.attr("id") else { return };
    let kind = element.attr("type").unwrap_or_default();
    if !matches!(kind, "get" | "set") {
        return;
    }
    let error = |kind, condition| stanzas::iq_error(to, from, id, kind, condition);
    let Some(payload) = element.children().next() else {
        shared.send_quietly(link, error("modify", "bad-request")).await;
        return;
    };
    let bare = to.resource().is_none();
    let answer = match (kind, payload.name(), payload.ns().as_str()) {
        ("get", "ping", ns::PING) if !bare => {
            // XEP-0410 self-ping: is this session still in under this nick?
            let session = FullJid::try_from(from.clone()).ok();
            let nick =
                session.and_then(|s| shared.hosted.occupants.lock().expect("occupants poisoned").nick_of(room, &s));
            if nick.as_deref() == to.resource().map(|r| r.as_str()) {
                stanzas::iq_result(to, from, id)
            } else {
                error("cancel", "not-acceptable")
            }
        }
        _ if !known(shared, room).await => error("cancel", "item-not-found"),
        ("get", "ping", ns::PING) => stanzas::iq_result(to, from, id),
        ("get", "query", ns::DISCO_INFO) if bare => {
            let name = room.node().map(|n| n.as_str()).unwrap_or_default().to_owned();
            stanzas::disco_info(
                to,
                from,
                id,
                &Disco { category: "conference", kind: "text", name: &name },
                ROOM_FEATURES,
            )
        }
        ("get", "query", ns::DISCO_ITEMS) if bare => stanzas::disco_items(to, from, id, &[]),
        ("set", "query", ns::MAM) if bare => match mam(shared, link, room, from, id, payload).await {
            Ok(fin) => fin,
            Err(condition) => error(if condition == "internal-server-error" { "wait" } else { "cancel" }, condition),
        },
        _ => error("cancel", "service-unavailable"),
    };
    shared.send_quietly(link, answer).await;
}

/// Answers a MAM query: the results, then (returned) the iq with `<fin/>`.
async fn mam(
    shared: &Shared,
    link: &Link,
    room: &BareJid,
    from: &Jid,
    id: &str,
    query: &Element,
) -> Result<Element, &'static str> {
    let query_id = query.attr("queryid").unwrap_or_default().chars().take(256).collect::<String>();
    let parsed = parse_query(query)?;
    let handle = archive_of(shared, room).await.map_err(|_| "internal-server-error")?;
    let (results, fin) = {
        let archive = handle.lock().await;
        let page = archive.query(&parsed)?;
        let results: Vec<Element> =
            page.items.iter().filter_map(|e| wire::mam_result(room, from, &query_id, e)).collect();
        (results, wire::mam_fin(room, from, id, &page))
    };
    for result in results {
        shared.send_quietly(link, result).await;
    }
    Ok(fin)
}

/// A MAM query's paging and time window; `with` and other fields are not filtered on.
fn parse_query(query: &Element) -> Result<Query, &'static str> {
    let mut parsed = Query::default();
    if let Some(set) = query.get_child("set", ns::RSM) {
        let text = |name| set.get_child(name, ns::RSM).map(Element::text);
        parsed.max = text("max").map(|m| m.trim().parse().map_err(|_| "bad-request")).transpose()?;
        parsed.after = text("after").filter(|a| !a.is_empty());
        parsed.before = text("before");
    }
    if let Some(form) = query.get_child("x", ns::DATA_FORMS) {
        for field in form.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
            let value = field.get_child("value", ns::DATA_FORMS).map(Element::text).unwrap_or_default();
            match field.attr("var") {
                Some("start") => parsed.start = Some(parse_datetime(&value).ok_or("bad-request")?),
                Some("end") => parsed.end = Some(parse_datetime(&value).ok_or("bad-request")?),
                _ => {}
            }
        }
    }
    Ok(parsed)
}

/// An XEP-0082 date-time (`2026-11-23T15:04:05.123Z`, `...+01:00`) as seconds since the epoch.
fn parse_datetime(value: &str) -> Option<u64> {
    let value = value.trim();
    let num = |s: &str| -> Option<i64> { s.parse().ok() };
    let (date, time) = value.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let (year, month, day) = (num(date.next()?)?, num(date.next()?)?, num(date.next()?)?);
    let (clock, offset) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, "Z"),
    };
    let clock = clock.split('.').next()?;
    let mut parts = clock.splitn(3, ':');
    let (h, m, s) = (num(parts.next()?)?, num(parts.next()?)?, num(parts.next()?)?);
    let offset = match offset {
        "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (num(oh)? * 3600 + num(om)? * 60)
        }
    };
    // Days from civil (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s - offset).ok()
}

/// Delivers a Matrix event to a hosted room.
pub(crate) async fn send(shared: &Shared, link: &Link, event: &OutboundEvent) -> Result<SendReceipt, BridgeError> {
    use crate::outbound::{Delivery, compose, message_id, reaction_set, receipt, remember_set};
    let room =
        BareJid::new(event.room.as_str()).map_err(|_| BridgeError::permanent("hosted room is not a bare JID"))?;
    let user = &event.sender.user_id;
    match &event.body {
        EventBody::Membership { membership: Membership::Join, display_name, .. } if event.target.is_none() => {
            let name = display_name.as_deref().or(event.sender.display_name.as_deref());
            matrix_nick(shared, link, &room, user, name).await;
            return Ok(SendReceipt::default());
        }
        EventBody::Membership { membership: Membership::Leave, .. } if event.target.is_none() => {
            let nick = shared.hosted.occupants.lock().expect("occupants poisoned").matrix_left(&room, user);
            if let Some(nick) = nick {
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

fn puppet_bare(shared: &Shared, user: &brygga_core::MatrixUserId) -> String {
    crate::puppet::puppet_jid(&shared.domain, user).map(|j| j.to_bare().to_string()).unwrap_or_default()
}

/// A Matrix user's nick in the room, announcing them to the room's
/// sessions when they are new there (or renamed).
async fn matrix_nick(
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

/// A kick or ban from Matrix: every session of the occupant is removed.
async fn remove(shared: &Shared, link: &Link, room: &BareJid, target: &BareJid, ban: bool) {
    let removed = shared.hosted.occupants.lock().expect("occupants poisoned").remove(room, target, ban);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_both_ways() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_446_245);
        assert_eq!(parse_datetime(&crate::history::xmpp_datetime(at)), Some(1_795_446_245));
        assert_eq!(parse_datetime("2026-11-23T16:04:05.250+01:00"), Some(1_795_446_245));
        assert_eq!(parse_datetime("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn mam_queries_read_paging_and_windows() {
        let query: Element = "<query xmlns='urn:xmpp:mam:2' queryid='q'>\
             <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>\
             <field var='start'><value>1970-01-01T00:01:40Z</value></field></x>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set></query>"
            .parse()
            .unwrap();
        let parsed = parse_query(&query).unwrap();
        assert_eq!(parsed.max, Some(10));
        assert_eq!(parsed.before.as_deref(), Some(""));
        assert_eq!(parsed.start, Some(100));
        let bad: Element =
            "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>many</max></set></query>"
                .parse()
                .unwrap();
        assert_eq!(parse_query(&bad).unwrap_err(), "bad-request");
    }
}
