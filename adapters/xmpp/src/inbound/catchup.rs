//! Catching up a group chat after the listener (re)joins: the room's archive
//! since the last moment the listener surely saw the room, page by page,
//! while live messages wait so the order holds. The bridge's dedupe drops
//! what was already bridged in the overlap.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_xmpp::jid::{BareJid, Jid};

use crate::adapter::Shared;
use crate::link::Link;
use crate::stanza::GroupMessage;
use crate::stanzas;

/// Starts a catch-up of `room`, unless this is the room's first join (which
/// bridges only what comes after it). Returns messages an earlier,
/// interrupted catch-up held, to be bridged now.
pub(super) async fn start(shared: &Shared, link: &Link, room: &BareJid) -> Vec<GroupMessage> {
    let known = shared.history.lock().expect("history poisoned").catch_up_from(room).is_some();
    if !known {
        // After a restart the point saved by the previous run says where to start.
        let saved = match shared.state.get(&state_key(room)).await {
            Ok(saved) => saved.and_then(|s| s.parse::<u64>().ok()),
            Err(err) => {
                tracing::warn!(room = %room, error = %err, "reading the catch-up point failed");
                None
            }
        };
        let at = saved.map_or_else(SystemTime::now, |secs| UNIX_EPOCH + Duration::from_secs(secs));
        shared.history.lock().expect("history poisoned").seen(room, at);
        if saved.is_none() {
            return Vec::new();
        }
    }
    let Some(since) = shared.history.lock().expect("history poisoned").catch_up_from(room) else {
        return Vec::new();
    };
    let query = link.fresh_id("mam");
    let held = shared.history.lock().expect("history poisoned").start_catch_up(room, &query, since);
    tracing::debug!(room = %room, "catching up from the room's archive");
    let request = stanzas::archive_query(&shared.listener, &Jid::from(room.clone()), &query, since, None);
    if let Err(err) = link.send(request).await {
        // The next join after reconnecting starts over and releases what is held.
        tracing::debug!(room = %room, error = %err, "archive query not sent");
    }
    held
}

/// The adapter-state key of a room's catch-up point.
fn state_key(room: &BareJid) -> String {
    format!("catchup:{room}")
}

/// Writes a room's catch-up point (in the background: it only saves work).
pub(super) fn save(shared: Arc<Shared>, room: BareJid, at: SystemTime) {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs().to_string();
    tokio::spawn(async move {
        if let Err(err) = shared.state.put(&state_key(&room), Some(&secs)).await {
            tracing::debug!(room = %room, error = %err, "saving the catch-up point failed");
        }
    });
}

/// One archive page ended: asks for the next, or ends the catch-up and
/// returns the live messages held meanwhile.
pub(super) async fn page_end(
    shared: &Shared,
    link: &Link,
    id: &str,
    from: &Jid,
    complete: bool,
    last: Option<String>,
) -> Vec<GroupMessage> {
    let Some(room) = shared.history.lock().expect("history poisoned").room_of_query(id) else { return Vec::new() };
    if from.to_bare() != room {
        return Vec::new();
    }
    if let (false, Some(last)) = (complete, last) {
        let query = link.fresh_id("mam");
        let since = shared.history.lock().expect("history poisoned").next_page(&room, &query);
        if let Some(since) = since {
            let request = stanzas::archive_query(&shared.listener, from, &query, since, Some(&last));
            if link.send(request).await.is_ok() {
                return Vec::new();
            }
        }
    }
    let mut history = shared.history.lock().expect("history poisoned");
    history.seen(&room, SystemTime::now());
    history.finish(&room)
}
