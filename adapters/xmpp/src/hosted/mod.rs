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
//! their nick as display name, which follows their nick changes. The room
//! is unmoderated: moderation happens on Matrix (kicks and bans from there
//! remove occupants). Its name and subject are the Matrix room's name and
//! topic; XMPP occupants cannot change the subject.

mod archive;
mod messages;
mod occupancy;
mod outbound;
mod private;
mod record;
mod rooms;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brygga_core::InboundEvent;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::ns;

use self::archive::Archive;
use self::messages::{iq, message};
use self::occupancy::{presence, schedule_leave};
use self::rooms::Occupants;
use crate::adapter::Shared;
use crate::link::Link;

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
    /// Held while a room's record is read or written.
    saving: tokio::sync::Mutex<()>,
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

/// Whether `room` is a hosted room with a portal, its record read (so
/// its bans hold before anyone joins).
async fn known(shared: &Arc<Shared>, room: &BareJid) -> bool {
    listed(shared, room).await && restore(shared, room).await
}

/// Whether `room` is among the hosted rooms with a portal.
async fn listed(shared: &Shared, room: &BareJid) -> bool {
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

pub(crate) use self::outbound::send;

/// Reads a hosted room's record (done after each connect too, so the
/// former occupants' leaves are bridged even if nobody speaks there);
/// false when it could not be read.
pub(crate) async fn restore(shared: &Arc<Shared>, room: &BareJid) -> bool {
    let loaded = record::load(shared, room).await;
    if let Err(err) = &loaded {
        tracing::warn!(room = %room, error = %err, "reading a hosted room's record failed");
    }
    loaded.is_ok()
}
