//! What a hosted room keeps across restarts, in the adapter state: the
//! Matrix users who appear in it, the JIDs banned from Matrix, and its name
//! and subject. XMPP occupants are not kept: they belong to one connection
//! and rejoin.

use std::collections::BTreeMap;
use std::sync::Arc;

use brygga_core::{BridgeError, MatrixUserId};
use serde::{Deserialize, Serialize};
use tokio_xmpp::jid::BareJid;

use super::rooms::Details;
use crate::adapter::Shared;

/// A room's kept state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Record {
    /// Matrix users by nick.
    pub(crate) matrix: BTreeMap<String, MatrixUserId>,
    /// Bare JIDs banned from Matrix.
    pub(crate) banned: Vec<String>,
    /// The room's name and subject.
    pub(crate) details: Details,
    /// XMPP occupants (bare JID, nick) when it was written: after a restart
    /// they are gone unless they rejoin within the grace period.
    pub(crate) xmpp: Vec<(String, String)>,
}

fn key(room: &BareJid) -> String {
    format!("hosted/{room}/record")
}

/// Reads the room's record into the occupant list, once per room and
/// process; the XMPP occupants it names leave after the grace period
/// unless they are back by then.
pub(crate) async fn load(shared: &Arc<Shared>, room: &BareJid) -> Result<(), BridgeError> {
    if shared.hosted.occupants.lock().expect("occupants poisoned").is_restored(room) {
        return Ok(());
    }
    let _guard = shared.hosted.saving.lock().await;
    let record = match shared.state.get(&key(room)).await? {
        Some(text) => serde_json::from_str(&text).unwrap_or_else(|err| {
            tracing::warn!(room = %room, error = %err, "a hosted room's record is unreadable; starting afresh");
            Record::default()
        }),
        None => Record::default(),
    };
    let gone = shared.hosted.occupants.lock().expect("occupants poisoned").restore(room, record);
    for (bare, nick) in gone {
        super::occupancy::schedule_leave(shared, room, &bare, &nick);
    }
    Ok(())
}

/// Writes the room's record as it is now. Writes are serialised, and each
/// takes its snapshot under the lock, so the last write holds the latest state.
pub(crate) async fn save(shared: &Shared, room: &BareJid) {
    let _guard = shared.hosted.saving.lock().await;
    let record = shared.hosted.occupants.lock().expect("occupants poisoned").record(room);
    let text = serde_json::to_string(&record).expect("a record serialises");
    if let Err(err) = shared.state.put(&key(room), Some(&text)).await {
        tracing::warn!(room = %room, error = %err, "keeping a hosted room's record failed");
    }
}
