//! Catch-up after a (re)connect: a room's live messages are held while its
//! REST history since the last point surely seen (kept in the adapter state,
//! so a restarted bridge catches up too) is bridged, in order; then the held
//! ones follow. What was already bridged is recognised by its message id.

use std::sync::Arc;
use std::time::Duration;

use crate::adapter::{Identity, Shared};
use crate::api;
use crate::dispatch;
use crate::message::RcMessage;
use crate::rest::RestError;
use crate::rooms::Step;

/// Overlap with what was already seen, against clock skew between messages.
const OVERLAP_MS: i64 = 5_000;
/// History reads tried before a room gives up on this catch-up.
const ATTEMPTS: u32 = 6;

/// Starts holding a room's live messages and catches it up in the background.
pub(crate) fn start(shared: &Arc<Shared>, identity: &Identity, rid: &str) {
    if !shared.rooms.lock().expect("rooms poisoned").begin_catch_up(rid) {
        return; // The running one reads history once more.
    }
    let (shared, identity, rid) = (shared.clone(), identity.clone(), rid.to_owned());
    tokio::spawn(async move {
        loop {
            if let Err(err) = catch_up(&shared, &identity, &rid).await {
                tracing::warn!(room = rid, error = %err, "Rocket.Chat catch-up failed; live messages go on");
            }
            if release(&shared, &rid) {
                return;
            }
        }
    });
}

async fn catch_up(shared: &Arc<Shared>, identity: &Identity, rid: &str) -> Result<(), RestError> {
    let known = shared.rooms.lock().expect("rooms poisoned").get(rid).and_then(|w| w.kind);
    let kind = match known {
        Some(kind) => kind,
        None => {
            let (kind, name) = retrying(|| api::room_info(&shared.rest, &identity.creds, rid)).await?;
            shared.rooms.lock().expect("rooms poisoned").describe(rid, kind, name);
            // The bot hears a public channel's messages only as a member.
            if kind == api::RoomKind::Channel
                && identity.owner.is_none()
                && let Err(err) = api::join_channel(&shared.rest, &identity.creds, rid).await
            {
                tracing::warn!(room = rid, error = %err, "the bot could not join a bridged channel");
            }
            kind
        }
    };
    let known = shared.rooms.lock().expect("rooms poisoned").seen(rid);
    let seen = match known {
        Some(seen) => Some(seen),
        None => shared.state.get(&format!("seen:{rid}")).await.ok().flatten().and_then(|s| s.parse::<i64>().ok()),
    };
    let Some(seen) = seen else {
        // A room seen for the first time is bridged from now on.
        shared.rooms.lock().expect("rooms poisoned").mark_seen(rid, crate::time::now_millis());
        return Ok(());
    };
    let oldest = crate::time::iso(seen - OVERLAP_MS);
    let messages = retrying(|| api::history(&shared.rest, &identity.creds, kind, rid, &oldest)).await?;
    let count = messages.len();
    for value in messages {
        match RcMessage::from_value(&value) {
            Ok(message) => dispatch::bridge(shared, &message),
            Err(reason) => tracing::warn!(reason, "a history message was skipped"),
        }
    }
    // History is by creation time: what changed of older messages during the
    // gap (edits, reactions, deletions) comes from the room's sync.
    let (updated, deleted) = retrying(|| api::sync_messages(&shared.rest, &identity.creds, rid, &oldest)).await?;
    let changes = updated.len() + deleted.len();
    for value in updated {
        match RcMessage::from_value(&value) {
            Ok(message) => dispatch::bridge(shared, &message),
            Err(reason) => tracing::warn!(reason, "a changed message was skipped"),
        }
    }
    for id in deleted {
        dispatch::deletion(shared, rid, &id);
    }
    tracing::debug!(room = rid, count, changes, "Rocket.Chat room caught up");
    Ok(())
}

/// Bridges what was held, until nothing is left and the hold ends (true),
/// or another catch-up was asked for meanwhile (false).
fn release(shared: &Arc<Shared>, rid: &str) -> bool {
    loop {
        let step = shared.rooms.lock().expect("rooms poisoned").next_step(rid);
        match step {
            Step::Again => return false,
            Step::Bridge(held) => {
                for message in held {
                    dispatch::bridge(shared, &message);
                }
            }
            Step::Done => return true,
        }
    }
}

/// Retries outages and rate limits a few times; other refusals end at once.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, RestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RestError>>,
{
    let mut backoff = brygga_core::Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
    let mut attempt = 0;
    loop {
        match call().await {
            Err(RestError::Unavailable(_) | RestError::RateLimited(_)) if attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(backoff.next_delay()).await;
            }
            other => return other,
        }
    }
}
