//! Presence of Teams people shown on their ghosts: polled with
//! `POST /communications/getPresencesByUserId` (at most 650 ids a call) for
//! the people seen in conversations active lately, and pushed only when it
//! changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brygga_core::{EventBody, InboundEvent, Presence, RemoteMessageId, RemoteRoomId, RemoteSender, RemoteUserId};
use reqwest::Method;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::{Page, PresenceInfo};
use crate::shared::Shared;

/// Graph's limit of ids per `getPresencesByUserId` call.
pub(crate) const BATCH: usize = 650;
/// People seen this long ago or less are polled.
const ACTIVE_FOR: Duration = Duration::from_secs(24 * 3600);

/// People seen in bridged conversations, and what was last shown for them.
#[derive(Default)]
pub(crate) struct Watched {
    /// Entra id to (a room they were seen in, when).
    seen: Mutex<HashMap<String, (String, Instant)>>,
    shown: Mutex<HashMap<String, (Presence, Option<String>)>>,
}

impl Watched {
    /// Notes that a person took part in a conversation.
    pub(crate) fn saw(&self, aad: &str, room: &str) {
        if aad.starts_with("app:") {
            return;
        }
        self.seen.lock().expect("watched poisoned").insert(aad.to_owned(), (room.to_owned(), Instant::now()));
    }

    fn active(&self) -> Vec<(String, String)> {
        let mut seen = self.seen.lock().expect("watched poisoned");
        seen.retain(|_, (_, at)| at.elapsed() < ACTIVE_FOR);
        let mut people: Vec<(String, String)> =
            seen.iter().map(|(aad, (room, _))| (aad.clone(), room.clone())).collect();
        people.sort();
        people
    }

    /// Whether this presence differs from the one shown (and remembers it).
    fn changed(&self, aad: &str, shown: (Presence, Option<String>)) -> bool {
        self.shown.lock().expect("watched poisoned").insert(aad.to_owned(), shown.clone()) != Some(shown)
    }
}

/// Graph's availability as Matrix presence, with the activity as status when it says more.
pub(crate) fn to_matrix(info: &PresenceInfo) -> (Presence, Option<String>) {
    let presence = match info.availability.as_deref().unwrap_or("PresenceUnknown") {
        "Available" => Presence::Online,
        "AvailableIdle" | "Away" | "BeRightBack" | "Busy" | "BusyIdle" | "DoNotDisturb" => Presence::Unavailable,
        _ => Presence::Offline,
    };
    let status = info
        .activity
        .as_deref()
        .filter(|a| !matches!(*a, "Available" | "Away" | "Offline" | "PresenceUnknown" | "OffWork"))
        .map(str::to_owned);
    (presence, status)
}

/// Polls presence until cancelled.
pub(crate) async fn run(shared: Arc<Shared>, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(err) = poll(&shared).await {
            tracing::debug!(tenant = %shared.tenant, error = %err, "Teams presence poll failed");
        }
    }
}

async fn poll(shared: &Shared) -> Result<(), crate::graph::GraphError> {
    let people = shared.watched.active();
    let rooms: HashMap<&str, &str> = people.iter().map(|(aad, room)| (aad.as_str(), room.as_str())).collect();
    for batch in people.chunks(BATCH) {
        let ids: Vec<&str> = batch.iter().map(|(aad, _)| aad.as_str()).collect();
        let body = json!({ "ids": ids });
        let answer =
            shared.app_call(Method::POST, "communications/getPresencesByUserId", Some(&body), "presence").await?;
        let infos = serde_json::from_value::<Page<PresenceInfo>>(answer.body).map(|p| p.value).unwrap_or_default();
        for info in infos {
            let shown = to_matrix(&info);
            let Some(room) = rooms.get(info.id.as_str()) else { continue };
            if !shared.watched.changed(&info.id, shown.clone()) {
                continue;
            }
            let (Ok(room), Ok(user), Ok(id)) = (
                RemoteRoomId::new(*room),
                RemoteUserId::new(info.id.clone()),
                RemoteMessageId::new(format!("presence:{}:{}", info.id, chrono::Utc::now().timestamp_millis())),
            ) else {
                continue;
            };
            let body = EventBody::Presence { presence: shown.0, status: shown.1 };
            let event = InboundEvent::new(room, id, RemoteSender::new(user), body);
            if let Err(err) = shared.sink.push(event).await {
                tracing::debug!(tenant = %shared.tenant, error = %err, "Teams presence not shown");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(availability: &str, activity: &str) -> PresenceInfo {
        PresenceInfo { id: "u".into(), availability: Some(availability.into()), activity: Some(activity.into()) }
    }

    #[test]
    fn availability_maps_to_matrix_presence() {
        assert_eq!(to_matrix(&info("Available", "Available")), (Presence::Online, None));
        assert_eq!(to_matrix(&info("Busy", "InAMeeting")), (Presence::Unavailable, Some("InAMeeting".into())));
        assert_eq!(to_matrix(&info("Away", "Away")), (Presence::Unavailable, None));
        assert_eq!(to_matrix(&info("Offline", "OffWork")), (Presence::Offline, None));
        assert_eq!(to_matrix(&info("PresenceUnknown", "PresenceUnknown")), (Presence::Offline, None));
    }

    #[tokio::test]
    async fn only_people_seen_lately_are_polled_and_only_changes_shown() {
        let watched = Watched::default();
        watched.saw("aad-1", "room-a");
        watched.saw("app:bot", "room-a");
        watched.saw("aad-2", "room-b");
        assert_eq!(watched.active(), vec![("aad-1".into(), "room-a".into()), ("aad-2".into(), "room-b".into())]);
        assert!(watched.changed("aad-1", (Presence::Online, None)));
        assert!(!watched.changed("aad-1", (Presence::Online, None)));
        assert!(watched.changed("aad-1", (Presence::Offline, None)));
    }
}
